#define _GNU_SOURCE
#include "CLinuxSyscalls.h"
#include <fcntl.h>
#include <signal.h>
#include <errno.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/epoll.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

struct rc_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

int rc_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve) {
    struct rc_open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(unsigned int)(flags | O_CLOEXEC);
    how.mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? mode : 0;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int rc_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) {
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

int rc_thread_setgroups(size_t count, const gid_t *groups) {
    return (int)syscall(SYS_setgroups, count, groups);
}

int rc_thread_setfsuid(uid_t uid) { return (int)syscall(SYS_setfsuid, uid); }
int rc_thread_setfsgid(gid_t gid) { return (int)syscall(SYS_setfsgid, gid); }

int rc_pidfd_open(pid_t pid, unsigned int flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }
int rc_pidfd_send_signal(int pidfd, int signal) { return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0); }

int rc_waitid_usage(int idtype, int id, void *info, int options, void *usage) {
    return (int)syscall(SYS_waitid, idtype, id, info, options, usage);
}

int rc_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "rc_kernel_sigaction has the layout of x86_64 and arm64 only"
#endif

/* The kernel's struct sigaction (rt_sigaction(2)), for setting dispositions in the child. */
struct rc_kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

/* glibc's own real-time signals (SIGCANCEL, SIGSETXID), which its headers do not name. */
enum { RC_SIGCANCEL = 32, RC_SIGSETXID = 33 };


/* Closes every descriptor from `first` up: close_range(2), or one by one up to the limit on a
   kernel without it (before 5.9). */
static int rc_close_from(int first) {
    if (syscall(SYS_close_range, (unsigned)first, ~0U, 0U) == 0) return 0;
    if (errno != ENOSYS) return errno;
    struct rlimit limit;
    if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &limit) < 0) return errno;
    for (rlim_t fd = (rlim_t)first; fd < limit.rlim_cur; fd++) syscall(SYS_close, (int)fd);
    return 0;
}

/* What the child of rc_spawn_fds does between vfork and execve: only system calls, with every
   signal blocked. Returns only on failure (the errno). Not inlined: it works in a frame of its
   own below rc_spawn_fds's, so it cannot overwrite that one's locals, which the parent uses
   when it resumes (vfork: one stack for both). `moved` is scratch space for `count` fds. */
__attribute__((noinline)) static int rc_spawn_child(const char *path, char *const argv[], char *const envp[],
                                                    const char *directory, const int *fds, int count, int flags,
                                                    int *moved) {
    /* No handler of the daemon's may run in the child, which shares its memory: every signal
       to its default, but glibc's own two (SIGCANCEL, SIGSETXID) ignored, as posix_spawn's
       POSIX_SPAWN_SETSIGDEF with a full set leaves them. */
    for (int sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        struct rc_kernel_sigaction action;
        memset(&action, 0, sizeof action);
        action.handler = (sig == RC_SIGCANCEL || sig == RC_SIGSETXID) ? SIG_IGN : SIG_DFL;
        syscall(SYS_rt_sigaction, sig, &action, NULL, sizeof(uint64_t));
    }
    if ((flags & RC_SPAWN_SETSID) && setsid() < 0) return errno;
    if ((flags & RC_SPAWN_SETPGROUP) && setpgid(0, 0) < 0) return errno;
    /* Every source moves above the targets first, so that no dup2 below overwrites another's
       source; then each lands on its target (dup2 clears close-on-exec there). */
    for (int i = 0; i < count; i++) {
        if ((moved[i] = fcntl(fds[i], F_DUPFD, count)) < 0) return errno;
    }
    for (int i = 0; i < count; i++) {
        if (dup2(moved[i], i) < 0) return errno;
    }
    int closing = rc_close_from(count);
    if (closing != 0) return closing;
    if (directory != NULL && chdir(directory) < 0) return errno;
    uint64_t none = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
    execve(path, argv, envp);
    return errno;
}

int rc_spawn_fds(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *directory,
                 const int *fds, int count, int flags) {
    if (count < 0 || count > RC_SPAWN_MAX_FDS) return EINVAL;
    int moved[RC_SPAWN_MAX_FDS];
    /* Every signal blocked (glibc's own too, which sigprocmask(3) leaves alone) until the child
       has set its dispositions; the parent's mask comes back once the child has exec'd. */
    uint64_t all = ~(uint64_t)0, saved = 0;
    if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, &saved, sizeof all) < 0) return errno;
    /* Written by the child (vfork: the same memory) when it cannot exec. */
    volatile int failure = 0;
    pid_t child = vfork();
    if (child == 0) {
        failure = rc_spawn_child(path, argv, envp, directory, fds, count, flags, moved);
        _exit(127);
    }
    int forkError = child < 0 ? errno : 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &saved, NULL, sizeof saved);
    if (child < 0) return forkError;
    if (failure != 0) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        return failure;
    }
    *pid = child;
    return 0;
}

int rc_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t key) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = events;
    event.data.u64 = key;
    return epoll_ctl(epfd, op, fd, &event);
}

int rc_epoll_wait(int epfd, uint64_t *keys, int max, int timeout) {
    struct epoll_event ready[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, ready, max, timeout);
    for (int i = 0; i < n; i++) keys[i] = ready[i].data.u64;
    return n;
}

int rc_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int rc_timer_create(void) { return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC); }

int rc_timer_set(int fd, int64_t nanoseconds) {
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    spec.it_value.tv_sec = nanoseconds / 1000000000;
    spec.it_value.tv_nsec = nanoseconds % 1000000000;
    return timerfd_settime(fd, 0, &spec, NULL);
}
