/* observer DIR...: prints "<CLOCK_REALTIME ns> <dir index> <name>\n" for every file renamed into
 * (IN_MOVED_TO) or written and closed in (IN_CLOSE_WRITE) the given folders, flushing after each
 * batch. The same observer times releasectl and the peer. Prints "ready\n" once watching. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int fd = inotify_init1(IN_CLOEXEC);
    if (fd < 0) { perror("inotify_init1"); return 1; }
    int wds[16];
    for (int i = 1; i < argc && i < 17; i++) {
        wds[i - 1] = inotify_add_watch(fd, argv[i], IN_MOVED_TO | IN_CLOSE_WRITE);
        if (wds[i - 1] < 0) { perror(argv[i]); return 1; }
    }
    printf("ready\n");
    fflush(stdout);
    char buf[256 * 1024] __attribute__((aligned(8)));
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return 0;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long now = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            if (e->mask & IN_Q_OVERFLOW) printf("%lld -1 OVERFLOW\n", now);
            if (e->len > 0) {
                int dir = -1;
                for (int i = 0; i < argc - 1; i++) if (wds[i] == e->wd) dir = i;
                printf("%lld %d %s\n", now, dir, e->name);
            }
            p += sizeof(struct inotify_event) + e->len;
        }
        if (fflush(stdout) != 0) return 0;
    }
}
