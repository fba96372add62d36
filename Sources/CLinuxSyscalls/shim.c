#define _GNU_SOURCE
#include "CLinuxSyscalls.h"
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
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
