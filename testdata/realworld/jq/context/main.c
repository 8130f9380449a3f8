/* Stand-in (rbuild realworld corpus) for jq. */
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--version") == 0) { puts("jq-1.7.1-standin"); return 0; }
    puts("{}");
    return 0;
}
