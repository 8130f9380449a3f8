/* The C benchmark's program (benches/platforms/run.sh, modes c-emulated and c-cross): prints
 * the architecture it was compiled for and the one it runs on, as uname(2) says. */
#include <stdio.h>
#include <sys/utsname.h>

#if defined(__x86_64__)
#define BUILT_FOR "amd64"
#elif defined(__aarch64__)
#define BUILT_FOR "arm64"
#else
#define BUILT_FOR "other"
#endif

int main(void)
{
	struct utsname u;
	const char *machine = uname(&u) == 0 ? u.machine : "?";
	printf("%s %s\n", BUILT_FOR, machine);
	return 0;
}
