// A program for the multi-platform tests and benchmark: prints the architecture it was built
// for (runtime.GOARCH) and the one it runs on, as uname(2) says.
package main

import (
	"fmt"
	"runtime"
	"syscall"
)

func main() {
	var u syscall.Utsname
	machine := "?"
	if syscall.Uname(&u) == nil {
		b := make([]byte, 0, len(u.Machine))
		for _, c := range u.Machine {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		machine = string(b)
	}
	fmt.Printf("%s %s\n", runtime.GOARCH, machine)
}
