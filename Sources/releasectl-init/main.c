// releasectl-init: starts an image release's task inside its container.
//
// The daemon bind-mounts this program read-only into the task's container and makes it the
// container's entrypoint; the engine runs it as the container's user, under the container's
// limits. It reads what to run from stdin, which the daemon feeds through the engine, so that
// no value of the task's environment is ever in the argv or the environment of a process on
// the host (the engine, its network plugins and their iptables run as root and read their own
// environment):
//
//   "RCI1", u32 argc, u32 envc, then argc + envc strings, each a u32 length and its bytes
//   (little-endian; no NUL inside a string; at most MESSAGE_LIMIT bytes in all)
//
// It then makes stdin /dev/null, sets the environment to the image's (as the engine gave it)
// with the task's variables over it, and execs argv (a name without a slash is looked up in
// that environment's PATH, as the engine would). A message cut short or malformed runs
// nothing. Its own failures are one line on stderr starting "releasectl-init: ", and exit
// status 126 (127: the command was not found). Statically linked: it needs nothing of the image, not even a libc.
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MESSAGE_LIMIT (16u << 20)

extern char **environ;

static void fail(int code, const char *what, const char *detail) {
    // Not "Error: …": that is how the engine's own failures start.
    dprintf(2, "releasectl-init: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    _exit(code);
}

static size_t total;

static void read_exactly(void *buffer, size_t count) {
    total += count;
    if (total > MESSAGE_LIMIT) fail(126, "the task's command and environment are over the limit", NULL);
    char *p = buffer;
    while (count > 0) {
        ssize_t n = read(0, p, count);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(126, "reading the task's command and environment", strerror(errno));
        if (n == 0) fail(126, "the task's command and environment were cut short; not starting the task", NULL);
        p += n;
        count -= (size_t)n;
    }
}

static uint32_t read_u32(void) {
    unsigned char b[4];
    read_exactly(b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static char *read_string(void) {
    uint32_t length = read_u32();
    if (length >= MESSAGE_LIMIT) fail(126, "the task's command and environment are over the limit", NULL);
    char *s = malloc((size_t)length + 1);
    if (!s) fail(126, "out of memory", NULL);
    read_exactly(s, length);
    if (memchr(s, 0, length)) fail(126, "a string of the task holds a NUL byte", NULL);
    s[length] = 0;
    return s;
}

// Whether two "NAME=value" entries (or a name) have the same name.
static int same_name(const char *a, const char *b) {
    size_t i = 0;
    while (a[i] && a[i] != '=' && a[i] == b[i]) i++;
    return (a[i] == 0 || a[i] == '=') && (b[i] == 0 || b[i] == '=');
}

int main(void) {
    char magic[4];
    read_exactly(magic, 4);
    if (memcmp(magic, "RCI1", 4) != 0) fail(126, "stdin does not hold a task of releasectl's", NULL);
    uint32_t argc = read_u32(), envc = read_u32();
    if (argc == 0 || argc > MESSAGE_LIMIT / 4 || envc > MESSAGE_LIMIT / 4) fail(126, "a malformed task", NULL);
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    if (!argv) fail(126, "out of memory", NULL);
    for (uint32_t i = 0; i < argc; i++) argv[i] = read_string();

    // The image's environment, then the task's: a task's variable replaces the image's.
    size_t own = 0;
    while (environ && environ[own]) own++;
    char **env = calloc(own + envc + 1, sizeof *env);
    if (!env) fail(126, "out of memory", NULL);
    size_t count = 0;
    for (size_t i = 0; i < own; i++) env[count++] = environ[i];
    for (uint32_t i = 0; i < envc; i++) {
        char *entry = read_string();
        if (!strchr(entry, '=') || entry[0] == '=') fail(126, "a malformed variable", NULL);
        size_t j = 0;
        while (j < count && !same_name(env[j], entry)) j++;
        env[j] = entry;
        if (j == count) count++;
    }
    env[count] = NULL;

    int null = open("/dev/null", O_RDONLY);
    if (null < 0) fail(126, "cannot open /dev/null", strerror(errno));
    if (null != 0) {
        if (dup2(null, 0) != 0) fail(126, "cannot open /dev/null", strerror(errno));
        close(null);
    }
    environ = env;
    execvp(argv[0], argv);
    // Said as a host task's is, on a line of its own that the daemon takes as "not started".
    int error = errno;
    const char *path = getenv("PATH");
    if (error == ENOENT && !strchr(argv[0], '/'))
        dprintf(2, "releasectl-init: command not found: %.400s (PATH=%.2000s)\n", argv[0], path ? path : "");
    else
        dprintf(2, "releasectl-init: cannot run %.400s: %s\n", argv[0], strerror(error));
    _exit(error == ENOENT ? 127 : 126);
}
