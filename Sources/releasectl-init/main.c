// releasectl-init: starts release tasks, and reports what each one used. Statically linked:
// it needs nothing of the image, or of the host, it runs on. Two ways of running:
//
// In a container (any arguments but --run-as: the daemon passes the first task's name, for
// `podman ps`) it runs an image release's tasks, one after another. The
// daemon bind-mounts it read-only into the container and makes it the entrypoint; it must be
// the container's PID 1 (it refuses otherwise: only PID 1 can end everything a task left), and
// the engine runs it as the container's user, under the container's limits. It reads what to
// run from its stdin, which the daemon feeds through the engine, so that no value of a task's
// environment is ever in the argv or the environment of a process on the host (the engine,
// its network plugins and their iptables run as root and read their own environment).
//
// Messages on stdin, each a type byte and a little-endian u32 length, then that many bytes:
//
//   'K'  the key that marks this program's reports (1 to 64 letters and digits): sent before
//        each task, a new one each time, so that no report of one task can count for another
//   'T'  run a task: u32 argc, u32 envc, then argc + envc strings, each a u32 length and its
//        bytes (no NUL inside); at most MESSAGE_LIMIT bytes in all
//   'S'  signal the running task's process group: u32 signal number
//
// End of stdin: the daemon is done (or gone): a task still running is killed, and the program
// exits. Each task runs in a session of its own, with stdin /dev/null and stderr joined to
// stdout (the container's output, the task's output); its environment is the image's (as the
// engine gave it) with the task's variables over it; a name without a slash is looked up in
// that environment's PATH. When it ends, every other process of the container is ended and
// reaped, and the reports follow the task's output on stdout, each marked by the key:
//
//   \036releasectl-init <key> ready                     (once, on the first key)
//   \036releasectl-init <key> limits-changed            (the task changed this program's own
//                                                        rlimits, nice value, CPU affinity or
//                                                        I/O priority: the next task must not
//                                                        inherit them, so the container ends)
//   \036releasectl-init <key> ended exit <code> cpu_us <n> maxrss_kb <n>
//   \036releasectl-init <key> ended signal <n> cpu_us <n> maxrss_kb <n>
//   \036releasectl-init <key> failed <126|127> <errno> <step>   (it did not start: `exec`, …)
//   \036releasectl-init <key> fatal <why>               (this program cannot go on; it exits)
//
// Only this program knows the key: it is in no file, argument or variable, and the program
// makes itself non-dumpable, so a task (the same user) can read neither its memory nor its
// descriptors through /proc. A task can print anything, but not a report. A `failed` report
// carries no text of the task's: the daemon says what could not be run from its own copy.
//
// On the host (`--run-as UID GID GROUPS EXECUTABLE ARGV0 [ARG...]`, ids `- - -` to keep the
// daemon's) it starts one host task: the daemon spawns it in the task's session and process
// group, and, once it is where the task must be (a systemd scope), writes the task's
// environment on its stdin (each NAME=value followed by a NUL, one more NUL at the end; a list
// cut short runs nothing). It forks the task into the same process group; the task switches
// to the app's groups, gid and uid (for good) and execs, with stdin /dev/null, while this
// program keeps the daemon's ids (so the task can neither signal it nor change its limits),
// waits for it, and writes one report on descriptor 3 (a pipe only the daemon reads; the task
// does not inherit it):
//
//   ended exit <code> cpu_us <n> maxrss_kb <n>      or      ended signal <n> cpu_us <n> maxrss_kb <n>
//
// then exits as the task did. When it cannot start the task it exits 126 (127: no such
// command) and says why: `failed <126|127> <errno> <step>` on descriptor 3, else (run by hand,
// with no descriptor 3) in words on stderr.
//
// Either way the usage is the task's own (wait4: its process and the children it waited for;
// in a container the CPU of what it left, reaped by PID 1, too), none of this program's nor
// the daemon's: the task is forked from this small program, whose few hundred KiB are all the
// task's peak can inherit (a process exec'd straight from the daemon would inherit the
// daemon's peak); what a task's message took is freed before the next task is forked.
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <grp.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MESSAGE_LIMIT (16u << 20)

extern char **environ;

// The current key ("" until the first 'K').
static char key[65];

static void write_all(int fd, const char *bytes, size_t n) {
    for (size_t done = 0; done < n;) {
        ssize_t w = write(fd, bytes + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        done += (size_t)w;
    }
}

// One report line on stdout, after the task's output: "\036releasectl-init KEY " and the text.
static void report(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *format, ...) {
    char line[4096];
    int at = snprintf(line, sizeof line, "\036releasectl-init %s ", key);
    va_list args;
    va_start(args, format);
    int n = vsnprintf(line + at, sizeof line - 1 - (size_t)at, format, args);
    va_end(args);
    if (n < 0) return;
    n += at;
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    write_all(1, line, (size_t)n);
}

// This program cannot go on (the daemon's messages cannot be understood, or it is out of
// memory): says why — as a `fatal` report once it has a key, else on stderr for a person —
// and exits.
static void fail(const char *why) __attribute__((noreturn));
static void fail(const char *why) {
    if (key[0]) {
        report("fatal %s", why);
    } else {
        char line[512];
        int n = snprintf(line, sizeof line, "releasectl-init: %s\n", why);
        if (n > 0) write_all(2, line, n < (int)sizeof line ? (size_t)n : sizeof line - 1);
    }
    _exit(126);
}

// stdin, read whole messages at a time.
static unsigned char *input;
static size_t have, capacity;
static int input_closed;

#define INPUT_START 131072

// Reads what stdin has (one read); false at its end.
static int read_input(void) {
    if (capacity - have < 65536) {
        size_t grown = capacity ? capacity * 2 : INPUT_START;
        if (grown > MESSAGE_LIMIT + 65536) grown = MESSAGE_LIMIT + 65536;
        if (grown <= capacity) fail("a message over the limit");
        unsigned char *bigger = realloc(input, grown);
        if (!bigger) fail("out of memory");
        input = bigger;
        capacity = grown;
    }
    ssize_t n;
    do { n = read(0, input + have, capacity - have); } while (n < 0 && errno == EINTR);
    if (n <= 0) { input_closed = 1; return 0; }
    have += (size_t)n;
    return 1;
}

// Gives back what a large message made the buffer grow to, so that the next task, forked
// from this program, does not inherit (and count) it.
static void shrink_input(void) {
    if (capacity <= INPUT_START || have > INPUT_START / 2) return;
    unsigned char *smaller = malloc(INPUT_START);
    if (!smaller) return;
    memcpy(smaller, input, have);
    free(input);
    input = smaller;
    capacity = INPUT_START;
}

static uint32_t u32_at(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// A whole message at the start of the buffer: its type and payload (0 when none is whole).
static int next_message(unsigned char *type, const unsigned char **payload, uint32_t *length) {
    if (have >= 1 && input[0] != 'K' && input[0] != 'T' && input[0] != 'S') fail("stdin does not hold releasectl's messages");
    if (have < 5) return 0;
    uint32_t n = u32_at(input + 1);
    if (n > MESSAGE_LIMIT) fail("a message over the limit");
    if (have < 5 + (size_t)n) return 0;
    *type = input[0];
    *payload = input + 5;
    *length = n;
    return 1;
}

static void consume(uint32_t length) {
    size_t used = 5 + (size_t)length;
    memmove(input, input + used, have - used);
    have -= used;
}

// Whether two "NAME=value" entries (or a name) have the same name.
static int same_name(const char *a, const char *b) {
    size_t i = 0;
    while (a[i] && a[i] != '=' && a[i] == b[i]) i++;
    return (a[i] == 0 || a[i] == '=') && (b[i] == 0 || b[i] == '=');
}

static char **image_environment;
static size_t image_count;

// A task's argv and environment, as parse_task made them: freed with free_task.
struct task {
    char **argv;
    char **env;
    char **strings;  // every string allocated (argv's and the task's variables)
    size_t string_count;
};

static void free_task(struct task *t) {
    for (size_t i = 0; i < t->string_count; i++) free(t->strings[i]);
    free(t->strings);
    free(t->argv);
    free(t->env);
    memset(t, 0, sizeof *t);
}

// A task from a 'T' payload (argv and environment NULL-terminated); 0 when malformed.
static int parse_task(const unsigned char *p, uint32_t length, struct task *t) {
    memset(t, 0, sizeof *t);
    if (length < 8) return 0;
    uint32_t argc = u32_at(p), envc = u32_at(p + 4);
    if (argc == 0 || argc > length / 4 || envc > length / 4) return 0;
    size_t at = 8;
    t->argv = calloc((size_t)argc + 1, sizeof *t->argv);
    t->env = calloc(image_count + envc + 1, sizeof *t->env);
    t->strings = calloc((size_t)argc + envc, sizeof *t->strings);
    if (!t->argv || !t->env || !t->strings) fail("out of memory");
    size_t count = 0;
    for (size_t i = 0; i < image_count; i++) t->env[count++] = image_environment[i];
    for (uint32_t i = 0; i < argc + envc; i++) {
        if (at + 4 > length) return 0;
        uint32_t n = u32_at(p + at);
        at += 4;
        if (n > length - at) return 0;
        if (memchr(p + at, 0, n)) return 0;
        char *s = malloc((size_t)n + 1);
        if (!s) fail("out of memory");
        t->strings[t->string_count++] = s;
        memcpy(s, p + at, n);
        s[n] = 0;
        at += n;
        if (i < argc) {
            t->argv[i] = s;
        } else {
            if (!strchr(s, '=') || s[0] == '=') return 0;
            size_t j = 0;
            while (j < count && !same_name(t->env[j], s)) j++;
            t->env[j] = s;
            if (j == count) count++;
        }
    }
    return at == length;
}

// What a task could change of this program, same user as it is: its limits, its nice value,
// its CPU affinity, its I/O priority. Taken at start and after each task.
struct own_settings {
    struct rlimit limits[RLIM_NLIMITS];
    int nice;
    cpu_set_t cpus;
    long io_priority;
};

static void take_settings(struct own_settings *s) {
    memset(s, 0, sizeof *s);
    for (int r = 0; r < RLIM_NLIMITS; r++) getrlimit(r, &s->limits[r]);
    errno = 0;
    s->nice = getpriority(PRIO_PROCESS, 0);
    sched_getaffinity(0, sizeof s->cpus, &s->cpus);
    s->io_priority = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
}

static struct own_settings at_start;

// Ends everything a task left: every process of the container but this one (its PID 1: every
// orphan is its child), reaped before the report.
static void end_leftovers(void) {
    kill(-1, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
}

// The CPU of every child reaped so far (the tasks, and what they left), in microseconds.
static long long children_cpu_us(void) {
    struct rusage all;
    getrusage(RUSAGE_CHILDREN, &all);
    return (long long)all.ru_utime.tv_sec * 1000000 + all.ru_utime.tv_usec
         + (long long)all.ru_stime.tv_sec * 1000000 + all.ru_stime.tv_usec;
}

// Why a task did not start, from its child: the step and its errno.
struct start_error {
    int step;  // 0: exec, 1: stdin, 2…: the host's id switch (see run_as)
    int error;
};

static const char *step_names[] = {"exec", "stdin", "setgroups", "setgid", "setuid", "regain-root"};

// SIGCHLD, blocked and read here (see run_task); set up in main.
static int children = -1;

// Runs one task to its end, reading stdin meanwhile for signals to it.
static void run_task(struct task *t) {
    long long cpu_before = children_cpu_us();
    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) < 0) { report("failed 126 %d pipe", errno); return; }
    pid_t task = fork();
    if (task < 0) {
        report("failed 126 %d fork", errno);
        close(status_pipe[0]);
        close(status_pipe[1]);
        return;
    }
    if (task == 0) {
        for (int sig = 1; sig < 65; sig++) signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0 || dup2(1, 2) < 0) {
            struct start_error e = {1, errno};
            (void)!write(status_pipe[1], &e, sizeof e);
            _exit(126);
        }
        if (null > 2) close(null);
        environ = t->env;
        execvp(t->argv[0], t->argv);
        struct start_error e = {0, errno};
        (void)!write(status_pipe[1], &e, sizeof e);
        _exit(e.error == ENOENT ? 127 : 126);
    }
    close(status_pipe[1]);
    struct start_error start_error;
    ssize_t got;
    do { got = read(status_pipe[0], &start_error, sizeof start_error); } while (got < 0 && errno == EINTR);
    close(status_pipe[0]);
    if (got == (ssize_t)sizeof start_error) {
        waitpid(task, NULL, 0);
        end_leftovers();
        report("failed %d %d %s", start_error.step == 0 && start_error.error == ENOENT ? 127 : 126, start_error.error,
               step_names[start_error.step]);
        return;
    }
    // Every child's end is a SIGCHLD on `children` (blocked, read through a signalfd): the
    // task's, and those of what it left, which as PID 1 this program reaps as they end (a
    // zombie would keep its pid under the container's pids limit).
    int status = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    int task_ended = 0;
    for (;;) {
        pid_t reaped;
        struct rusage r;
        int st;
        while ((reaped = wait4(-1, &st, WNOHANG, &r)) > 0) {
            if (reaped == task) { status = st; usage = r; task_ended = 1; }
        }
        if (task_ended) break;
        struct pollfd fds[2] = {{.fd = children, .events = POLLIN}, {.fd = input_closed ? -1 : 0, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR) fail("cannot wait for the task (poll)");
        if (fds[0].revents) {
            struct signalfd_siginfo info;
            while (read(children, &info, sizeof info) > 0) {}
        }
        if (fds[1].revents) {
            if (!read_input()) {
                // The daemon is gone (or gave up): the task goes too.
                kill(-task, SIGKILL);
                kill(task, SIGKILL);
                continue;
            }
            unsigned char type;
            const unsigned char *payload;
            uint32_t length;
            while (next_message(&type, &payload, &length)) {
                if (type == 'S' && length == 4) {
                    int sig = (int)u32_at(payload);
                    if (sig > 0 && sig < 65) { kill(-task, sig); kill(task, sig); }
                    consume(length);
                } else {
                    break;  // a next task waits until this one has ended
                }
            }
        }
    }
    end_leftovers();
    // The CPU of the task and of everything it left (all reaped by now); the peak of its
    // largest process among those it waited for.
    long long cpu_us = children_cpu_us() - cpu_before;
    struct own_settings now;
    take_settings(&now);
    if (memcmp(&now, &at_start, sizeof now) != 0) report("limits-changed");
    if (WIFSIGNALED(status))
        report("ended signal %d cpu_us %lld maxrss_kb %ld", WTERMSIG(status), cpu_us, usage.ru_maxrss);
    else
        report("ended exit %d cpu_us %lld maxrss_kb %ld", WEXITSTATUS(status), cpu_us, usage.ru_maxrss);
}


// --- On the host: one task as the app's user -----------------------------------------------

// The report's descriptor in host mode (-1: none was given).
static int run_as_reports = -1;

// Says why the task is not started — as a `failed <code> <errno> <step>` report, else in
// words on stderr, for whoever ran this program by hand — and exits with `code`.
static void refuse(int code, int error, const char *step, const char *format, ...) __attribute__((format(printf, 4, 5), noreturn));
static void refuse(int code, int error, const char *step, const char *format, ...) {
    char line[1024];
    int n;
    if (run_as_reports >= 0) {
        n = snprintf(line, sizeof line, "failed %d %d %s\n", code, error, step);
    } else {
        va_list args;
        va_start(args, format);
        n = vsnprintf(line, sizeof line - 1, format, args);
        va_end(args);
        if (n < 0) n = 0;
        if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
        line[n++] = '\n';
    }
    write_all(run_as_reports >= 0 ? run_as_reports : 2, line, (size_t)n);
    _exit(code);
}

// A decimal id, or -1.
static long parse_id(const char *text) {
    if (!*text) return -1;
    long value = 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9' || value > 0x7fffffffL / 10) return -1;
        value = value * 10 + (*c - '0');
    }
    return value;
}

#define ENVIRONMENT_LIMIT (4u << 20)

static void caught_nothing(int sig) { (void)sig; }

static int run_as(int argc, char **argv) {
    if (argc < 7) refuse(2, 0, "usage", "usage: releasectl-init --run-as UID GID GROUPS EXECUTABLE ARGV0 [ARG...]");
    int keep = strcmp(argv[2], "-") == 0 && strcmp(argv[3], "-") == 0 && strcmp(argv[4], "-") == 0;
    long uid = keep ? -1 : parse_id(argv[2]), gid = keep ? -1 : parse_id(argv[3]);
    if (!keep && (uid < 0 || gid < 0)) refuse(2, 0, "usage", "run-as: bad ids %.40s %.40s", argv[2], argv[3]);
    gid_t groups[256];
    size_t group_count = 0;
    if (!keep && strcmp(argv[4], "-") != 0) {
        char *list = argv[4];
        for (char *part = strtok(list, ","); part; part = strtok(NULL, ",")) {
            long g = parse_id(part);
            if (g < 0 || group_count == sizeof groups / sizeof *groups) refuse(2, 0, "usage", "run-as: bad group list");
            groups[group_count++] = (gid_t)g;
        }
    }
    // The report's pipe: kept from the task (close-on-exec), and never stdin, stdout or stderr.
    int reports = fcntl(3, F_GETFD) >= 0 ? 3 : -1;
    if (reports >= 0) fcntl(reports, F_SETFD, FD_CLOEXEC);
    run_as_reports = reports;

    // The environment, to the end of stdin.
    while (read_input()) {
        if (have > ENVIRONMENT_LIMIT) refuse(126, 0, "environment", "run-as: environment over %u bytes", ENVIRONMENT_LIMIT);
    }
    // Entries are never empty, so two NULs in a row (or one alone) can only be the end.
    int complete = (have == 1 && input[0] == 0) || (have >= 2 && input[have - 1] == 0 && input[have - 2] == 0);
    if (!complete) refuse(126, 0, "environment", "run-as: the environment was cut short; not starting the task");
    size_t count = 0;
    for (size_t i = 0; i + 1 < have; i++) if (input[i] == 0) count++;
    char **env = calloc(count + 1, sizeof *env);
    if (!env) refuse(126, ENOMEM, "memory", "run-as: out of memory");
    size_t n = 0;
    for (size_t at = 0; at + 1 < have; at += strlen((char *)input + at) + 1) env[n++] = (char *)input + at;

    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0) refuse(126, errno, "stdin", "run-as: cannot open /dev/null: %s", strerror(errno));
    if (null > 2) close(null);
    // Like the daemon's own, this process's memory and descriptors are not the task's to read.
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) < 0) refuse(126, errno, "pipe", "run-as: cannot make a pipe: %s", strerror(errno));
    // Until the task has been waited for, no signal ends this process but SIGKILL: a
    // SIGTERM to the task's group reaches the task, and this one reports how it ended. (It
    // keeps the daemon's ids, so the task itself cannot signal it at all.) Caught, not
    // ignored: the exec gives the task every signal's default action back by itself.
    struct sigaction caught = {.sa_handler = caught_nothing, .sa_flags = SA_RESTART};
    for (int sig = 1; sig < 32; sig++) if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD) sigaction(sig, &caught, NULL);
    // vfork: the task starts without a copy of this process's memory (its peak counts this
    // program's few pages, as with fork, at less cost). Until it execs, the child shares that
    // memory, so it makes raw system calls only; what it writes there is `errno` and `e`,
    // which this process reads once the child has exec'd or exited.
    struct start_error e = {0, 0};
    pid_t task = vfork();
    if (task < 0) refuse(126, errno, "fork", "run-as: cannot fork: %s", strerror(errno));
    if (task == 0) {
        // (The credentials are this thread's own: the raw calls change the child's alone.)
        if (!keep) {
            // Groups first (it needs root), then the group id, then the user id; for good.
            if (syscall(SYS_setgroups, group_count, groups) != 0) e = (struct start_error){2, errno};
            else if (syscall(SYS_setgid, (gid_t)gid) != 0) e = (struct start_error){3, errno};
            else if (syscall(SYS_setuid, (uid_t)uid) != 0) e = (struct start_error){4, errno};
            else if (uid != 0 && syscall(SYS_setuid, 0) == 0) e = (struct start_error){5, 0};
        }
        if (e.step == 0) {
            syscall(SYS_execve, argv[5], argv + 6, env);
            e = (struct start_error){0, errno};
        }
        syscall(SYS_write, status_pipe[1], &e, sizeof e);
        syscall(SYS_exit, e.step == 0 && e.error == ENOENT ? 127 : 126);
    }
    close(status_pipe[1]);
    struct start_error start_error;
    ssize_t got;
    do { got = read(status_pipe[0], &start_error, sizeof start_error); } while (got < 0 && errno == EINTR);
    int status;
    struct rusage usage;
    while (wait4(task, &status, 0, &usage) < 0 && errno == EINTR) {}
    if (got == (ssize_t)sizeof start_error) {
        int code = start_error.step == 0 && start_error.error == ENOENT ? 127 : 126;
        if (start_error.step == 0)
            refuse(code, start_error.error, "exec", "cannot run %.400s: %s", argv[6], strerror(start_error.error));
        if (start_error.step == 5)
            refuse(code, 0, "regain-root", "run-as: still able to regain root after setuid(%ld)", uid);
        refuse(code, start_error.error, step_names[start_error.step], "cannot switch to uid %ld gid %ld: %s: %s", uid, gid,
               step_names[start_error.step], strerror(start_error.error));
    }
    long long cpu_us = (long long)usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec
                     + (long long)usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
    if (reports >= 0) {
        char line[160];
        int length = WIFSIGNALED(status)
            ? snprintf(line, sizeof line, "ended signal %d cpu_us %lld maxrss_kb %ld\n", WTERMSIG(status), cpu_us, usage.ru_maxrss)
            : snprintf(line, sizeof line, "ended exit %d cpu_us %lld maxrss_kb %ld\n", WEXITSTATUS(status), cpu_us, usage.ru_maxrss);
        write_all(reports, line, (size_t)length);
    }
    if (WIFSIGNALED(status)) {
        // Ends as the task did (without a core file of this program's own).
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        signal(WTERMSIG(status), SIG_DFL);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        raise(WTERMSIG(status));
        _exit(128 + WTERMSIG(status));
    }
    return WEXITSTATUS(status);
}

// --- In a container: the release's tasks, one after another ---------------------------------

// Takes a report key from a 'K' payload: letters and digits only, at most 64. The first one
// is answered with `ready`.
static void take_key(const unsigned char *p, uint32_t length) {
    if (length == 0 || length >= sizeof key) fail("a malformed key");
    for (uint32_t i = 0; i < length; i++) {
        unsigned char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) fail("a malformed key");
    }
    int first = key[0] == 0;
    memcpy(key, p, length);
    key[length] = 0;
    if (first) report("ready");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--run-as") == 0) return run_as(argc, argv);
    // (Other arguments, such as the first task's name the daemon gives the engine for people
    // reading `podman ps`, mean nothing here.)
    // Only the container's first process is every orphan's parent and may end all but itself.
    if (getpid() != 1)
        fail("not the container's first process: the engine runs an init of its own (podman --init, containers.conf "
             "init = true) or shares the host's processes; not running tasks");
    // Neither this program's memory (the key) nor its descriptors (stdin, where the daemon's
    // messages come; stdout, where reports go) are open to a task through /proc.
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    // As PID 1 no signal has a default action: the engine's stop reaches the tasks through
    // the daemon's 'S' messages, and a SIGKILL of the container ends everything anyway.
    signal(SIGPIPE, SIG_IGN);
    take_settings(&at_start);
    sigset_t child_signal;
    sigemptyset(&child_signal);
    sigaddset(&child_signal, SIGCHLD);
    sigprocmask(SIG_BLOCK, &child_signal, NULL);
    children = signalfd(-1, &child_signal, SFD_CLOEXEC | SFD_NONBLOCK);
    if (children < 0) fail("cannot watch its children (signalfd)");
#ifdef __GLIBC__
    // Strings of a large message are mapped and unmapped on their own, never left in the heap.
    // (musl's allocator, which script/build-init prefers, gives large blocks back by itself.)
    mallopt(M_MMAP_THRESHOLD, 65536);
#endif
    while (environ && environ[image_count]) image_count++;
    image_environment = environ;
    for (;;) {
        unsigned char type;
        const unsigned char *payload;
        uint32_t length;
        while (!next_message(&type, &payload, &length)) {
            if (input_closed || !read_input()) {
                if (have > 0) fail("a message was cut short; not running it");
                return 0;
            }
        }
        if (type == 'T') {
            struct task t;
            if (!parse_task(payload, length, &t)) fail("a malformed task");
            consume(length);
            shrink_input();
            run_task(&t);
            free_task(&t);
#ifdef __GLIBC__
            // Freed memory back to the kernel, not only to malloc: the next task is forked
            // from this process and would count its resident pages.
            malloc_trim(0);
#endif
        } else if (type == 'K') {
            take_key(payload, length);
            consume(length);
        } else if (type == 'S') {
            consume(length);  // no task runs: nothing to signal
        } else {
            fail("stdin does not hold releasectl's messages");
        }
    }
}
