/* stamp TRACE: appends "<RELEASE_ID> <CLOCK_REALTIME ns>\n" to TRACE and exits 0.
 * The benchmark's first task: a process like `true`, plus one clock read and one write, so the
 * moment a release's first task runs can be told apart from the moment it was dispatched. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (argc < 2) return 0;
    const char *id = getenv("RELEASE_ID");
    char line[256];
    int n = snprintf(line, sizeof line, "%s %lld\n", id ? id : "-", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) { if (write(fd, line, (size_t)n) < 0) {} close(fd); }
    return 0;
}
