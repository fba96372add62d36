#define _GNU_SOURCE
#include "CLinuxSyscalls.h"
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
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

int rc_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *directory, int input, int output) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    sigset_t all, none;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attributes);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return rc;
    }
    sigfillset(&all);
    sigemptyset(&none);
    if ((rc = posix_spawn_file_actions_adddup2(&actions, input, 0)) == 0 &&
        (rc = posix_spawn_file_actions_adddup2(&actions, output, 1)) == 0 &&
        (rc = posix_spawn_file_actions_adddup2(&actions, output, 2)) == 0 &&
        (rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3)) == 0 &&
        (rc = posix_spawn_file_actions_addchdir_np(&actions, directory)) == 0 &&
        (rc = posix_spawnattr_setsigdefault(&attributes, &all)) == 0 &&
        (rc = posix_spawnattr_setsigmask(&attributes, &none)) == 0 &&
        (rc = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)) == 0) {
        rc = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    }
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return rc;
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
