// Linux system calls that glibc 2.36 has no wrapper for, or whose glibc wrapper does more than
// the kernel call: Swift cannot call the variadic syscall(2) itself. Each returns what the
// kernel call returns (-1 with errno set on failure). And the calls Swift cannot make as they
// are: vfork, epoll's packed event struct.
#ifndef CLINUXSYSCALLS_H
#define CLINUXSYSCALLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RC_P_PIDFD 3

// openat2(2)'s resolve flags (linux/openat2.h).
#define RC_RESOLVE_NO_XDEV 0x01
#define RC_RESOLVE_NO_MAGICLINKS 0x02
#define RC_RESOLVE_NO_SYMLINKS 0x04
#define RC_RESOLVE_BENEATH 0x08
#define RC_RESOLVE_IN_ROOT 0x10

// O_PATH (fcntl.h defines it only with _GNU_SOURCE).
#define RC_O_PATH 010000000

// renameat2(2)'s flags.
#define RC_RENAME_NOREPLACE 1
#define RC_RENAME_EXCHANGE 2

/// openat2(2): opens `path` relative to `dirfd` with `flags` (O_CLOEXEC is added), resolving it
/// as `resolve` says (RC_RESOLVE_BENEATH: never leaving dirfd; RC_RESOLVE_IN_ROOT: as if dirfd
/// were the root). Fails with ENOSYS on kernels before 5.6.
int rc_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve);

/// renameat2(2).
int rc_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);

/// setgroups(2) for the calling thread only (glibc's wrapper changes every thread).
int rc_thread_setgroups(size_t count, const gid_t *groups);

/// setfsuid(2)/setfsgid(2) for the calling thread: the ids file access is checked against.
/// They return the previous id (the kernel reports no error; call with -1 to read it).
int rc_thread_setfsuid(uid_t uid);
int rc_thread_setfsgid(gid_t gid);

/// pipe2(2) with O_CLOEXEC: both ends close-on-exec from the start (no child spawned by
/// another thread in between inherits them).
int rc_pipe_cloexec(int fds[2]);

/// pidfd_open(2) and pidfd_send_signal(2) (Linux 5.3 / 5.1).
int rc_pidfd_open(pid_t pid, unsigned int flags);
int rc_pidfd_send_signal(int pidfd, int signal);

/// waitid(2) as the kernel has it, with the rusage glibc's wrapper drops: with WNOWAIT it
/// reports an exited child's resource usage (its own and its waited-for children's) without
/// reaping it. `idtype` P_PIDFD (3) waits on a pidfd.
int rc_waitid_usage(int idtype, int id, void *info, int options, void *usage);

// rc_spawn_fds's flags, and how many descriptors a child may be given.
#define RC_SPAWN_SETSID 1
#define RC_SPAWN_SETPGROUP 2
#define RC_SPAWN_MAX_FDS 16

/// Spawns `path` (vfork and execve: no stack of its own to map and unmap, as posix_spawn(3)
/// does, which in a many-threaded process costs every core a TLB flush) with every signal's
/// default disposition and an empty signal mask; in a session of its own (RC_SPAWN_SETSID) or
/// a process group of its own (RC_SPAWN_SETPGROUP), or the caller's; with descriptor i being
/// a copy of fds[i] for i < count and no other descriptor open; in `directory` (NULL: the
/// caller's). Sets *pid; returns 0 or the errno of the spawn (the exec's included; a child
/// that could not exec is reaped).
int rc_spawn_fds(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *directory,
                 const int *fds, int count, int flags);

// epoll's events and operations (sys/epoll.h is not in Swift's Glibc module).
#define RC_EPOLLIN 0x001
#define RC_EPOLLHUP 0x010
#define RC_EPOLL_CTL_ADD 1
#define RC_EPOLL_CTL_DEL 2

/// epoll_create1(EPOLL_CLOEXEC).
int rc_epoll_create(void);

/// timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC).
int rc_timer_create(void);

/// Arms the timer to go off once, `nanoseconds` from now (0 disarms it).
int rc_timer_set(int fd, int64_t nanoseconds);

/// epoll_ctl(2) with the event's data as one 64-bit key (struct epoll_event is packed on
/// x86-64, which Swift does not lay out). `op` is EPOLL_CTL_ADD, _MOD or _DEL.
int rc_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t key);

/// epoll_wait(2), each ready event's key into `keys` (at most `max`, at most 64).
int rc_epoll_wait(int epfd, uint64_t *keys, int max, int timeout);

#endif
