/* floor N PROGRAM [ARG]...: spawns N releases' worth of tasks back to back: for each release,
 * PROGRAM three times (posix_spawn, waitpid), the first one with ARG (stamp's trace). Prints
 * the total and each release's time in ns. The cost of the task processes alone. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static long long now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: floor N PROGRAM [FIRSTARG]\n"); return 2; }
    int n = atoi(argv[1]);
    char *first[] = { argv[2], argc > 3 ? argv[3] : NULL, NULL };
    char *rest[] = { argv[2], NULL };
    long long *each = malloc(sizeof(long long) * (size_t)n);
    long long start = now();
    for (int i = 0; i < n; i++) {
        long long t0 = now();
        for (int k = 0; k < 3; k++) {
            pid_t pid;
            if (posix_spawn(&pid, argv[2], NULL, NULL, k == 0 ? first : rest, environ) != 0) { perror("posix_spawn"); return 1; }
            int status;
            if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "task failed\n"); return 1; }
        }
        each[i] = now() - t0;
    }
    printf("total %lld\n", now() - start);
    for (int i = 0; i < n; i++) printf("%lld\n", each[i]);
    return 0;
}
