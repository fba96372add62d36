#include "CSystemdBus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

#define DEST "org.freedesktop.systemd1"
#define PATH "/org/freedesktop/systemd1"
#define MANAGER "org.freedesktop.systemd1.Manager"

struct rc_manager {
    sd_bus *bus;
    sd_bus_slot *slot;
    /// The job being waited for, and how it ended.
    char job[512];
    char result[64];
    int done;
    /// Jobs that ended before their path was known (their replies come first, but be safe).
    char ended[8][512];
    char ended_result[8][64];
    int ended_count;
};

static void say(char *error, size_t size, const char *what, int r, const sd_bus_error *e) {
    if (!error || size == 0) return;
    if (e && sd_bus_error_is_set(e)) snprintf(error, size, "%s: %s", what, e->message ? e->message : e->name);
    else snprintf(error, size, "%s: %s", what, strerror(r < 0 ? -r : r));
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *e) {
    (void) e;
    rc_manager *manager = userdata;
    uint32_t id;
    const char *path, *unit, *result;
    if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0) return 0;
    if (manager->job[0] && strcmp(path, manager->job) == 0) {
        manager->done = 1;
        snprintf(manager->result, sizeof manager->result, "%s", result);
    } else {
        int i = manager->ended_count % 8;
        snprintf(manager->ended[i], sizeof manager->ended[i], "%s", path);
        snprintf(manager->ended_result[i], sizeof manager->ended_result[i], "%s", result);
        manager->ended_count++;
    }
    return 0;
}

rc_manager *rc_manager_open(char *error, size_t error_size) {
    rc_manager *manager = calloc(1, sizeof *manager);
    if (!manager) { say(error, error_size, "out of memory", ENOMEM, NULL); return NULL; }
    int r;
    if (geteuid() == 0 && access("/run/systemd/private", F_OK) == 0) {
        // As root, straight to the manager (as systemctl does): no bus daemon needed.
        r = sd_bus_new(&manager->bus);
        if (r >= 0) r = sd_bus_set_address(manager->bus, "unix:path=/run/systemd/private");
        if (r >= 0) r = sd_bus_start(manager->bus);
    } else {
        r = sd_bus_open_system(&manager->bus);
    }
    if (r < 0) {
        say(error, error_size, "cannot connect to systemd", r, NULL);
        rc_manager_close(manager);
        return NULL;
    }
    r = sd_bus_match_signal(manager->bus, &manager->slot, NULL, PATH, MANAGER, "JobRemoved", on_job_removed, manager);
    if (r < 0) {
        say(error, error_size, "cannot watch systemd's jobs", r, NULL);
        rc_manager_close(manager);
        return NULL;
    }
    // Signals reach a bus client only once it has subscribed (a direct connection gets them anyway).
    sd_bus_error e = SD_BUS_ERROR_NULL;
    (void) sd_bus_call_method(manager->bus, DEST, PATH, MANAGER, "Subscribe", &e, NULL, NULL);
    sd_bus_error_free(&e);
    return manager;
}

void rc_manager_close(rc_manager *manager) {
    if (!manager) return;
    sd_bus_slot_unref(manager->slot);
    sd_bus_flush_close_unref(manager->bus);
    free(manager);
}

static uint64_t now_usec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/// Waits for the job of `reply` (an object path) to be removed.
static int wait_for_job(rc_manager *manager, sd_bus_message *reply, const char *what, int timeout_ms, char *error, size_t size) {
    const char *job;
    int r = sd_bus_message_read(reply, "o", &job);
    if (r < 0) { say(error, size, what, r, NULL); return -1; }
    snprintf(manager->job, sizeof manager->job, "%s", job);
    manager->done = 0;
    for (int i = 0; i < 8 && i < manager->ended_count; i++) {
        if (strcmp(manager->ended[i], job) == 0) {
            manager->done = 1;
            snprintf(manager->result, sizeof manager->result, "%s", manager->ended_result[i]);
        }
    }
    uint64_t until = now_usec() + (uint64_t) timeout_ms * 1000;
    while (!manager->done) {
        r = sd_bus_process(manager->bus, NULL);
        if (r < 0) { say(error, size, what, r, NULL); return -1; }
        if (r > 0) continue;
        uint64_t now = now_usec();
        if (now >= until) { snprintf(error, size, "%s: systemd did not finish the job in %d ms", what, timeout_ms); return -1; }
        r = sd_bus_wait(manager->bus, until - now);
        if (r < 0 && r != -EINTR) { say(error, size, what, r, NULL); return -1; }
    }
    manager->job[0] = 0;
    manager->ended_count = 0;
    if (strcmp(manager->result, "done") != 0) {
        snprintf(error, size, "%s: the job ended with \"%s\"", what, manager->result);
        return -1;
    }
    return 0;
}

int rc_manager_start_unit(rc_manager *manager, const char *name, const rc_unit_settings *settings, int timeout_ms,
                          char *error, size_t error_size) {
    sd_bus_message *m = NULL, *reply = NULL;
    sd_bus_error e = SD_BUS_ERROR_NULL;
    int r = sd_bus_message_new_method_call(manager->bus, &m, DEST, PATH, MANAGER, "StartTransientUnit");
    if (r >= 0) r = sd_bus_message_append(m, "ss", name, "fail");
    if (r >= 0) r = sd_bus_message_open_container(m, 'a', "(sv)");
    if (r >= 0 && settings->description) r = sd_bus_message_append(m, "(sv)", "Description", "s", settings->description);
    if (r >= 0 && settings->slice) r = sd_bus_message_append(m, "(sv)", "Slice", "s", settings->slice);
    if (r >= 0 && settings->pid > 0) r = sd_bus_message_append(m, "(sv)", "PIDs", "au", 1, (uint32_t) settings->pid);
    if (r >= 0 && settings->pid > 0) r = sd_bus_message_append(m, "(sv)", "Delegate", "b", 0);
    if (r >= 0) r = sd_bus_message_append(m, "(sv)", "MemoryAccounting", "b", 1);
    if (r >= 0) r = sd_bus_message_append(m, "(sv)", "CPUAccounting", "b", 1);
    if (r >= 0) r = sd_bus_message_append(m, "(sv)", "TasksAccounting", "b", 1);
    if (r >= 0 && settings->memory_max) r = sd_bus_message_append(m, "(sv)", "MemoryMax", "t", settings->memory_max);
    // No swap beyond the memory limit (cgroup v2; v1 has no such setting).
    if (r >= 0 && settings->memory_max) r = sd_bus_message_append(m, "(sv)", "MemorySwapMax", "t", (uint64_t) 0);
    if (r >= 0 && settings->cpu_quota_usec) r = sd_bus_message_append(m, "(sv)", "CPUQuotaPerSecUSec", "t", settings->cpu_quota_usec);
    if (r >= 0 && settings->tasks_max) r = sd_bus_message_append(m, "(sv)", "TasksMax", "t", settings->tasks_max);
    if (r >= 0) r = sd_bus_message_close_container(m);
    if (r >= 0) r = sd_bus_message_append(m, "a(sa(sv))", 0);
    if (r < 0) {
        say(error, error_size, "cannot build the request to systemd", r, NULL);
        sd_bus_message_unref(m);
        return -1;
    }
    r = sd_bus_call(manager->bus, m, (uint64_t) timeout_ms * 1000, &e, &reply);
    sd_bus_message_unref(m);
    if (r < 0) {
        say(error, error_size, "StartTransientUnit", r, &e);
        sd_bus_error_free(&e);
        return -1;
    }
    r = wait_for_job(manager, reply, "StartTransientUnit", timeout_ms, error, error_size);
    sd_bus_message_unref(reply);
    return r;
}

int rc_manager_stop_unit(rc_manager *manager, const char *name, int timeout_ms, char *error, size_t error_size) {
    sd_bus_message *reply = NULL;
    sd_bus_error e = SD_BUS_ERROR_NULL;
    int r = sd_bus_call_method(manager->bus, DEST, PATH, MANAGER, "StopUnit", &e, &reply, "ss", name, "replace");
    if (r < 0) {
        // Gone already (a scope whose processes all ended): nothing left to stop.
        int gone = sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit");
        say(error, error_size, "StopUnit", r, &e);
        sd_bus_error_free(&e);
        return gone ? 0 : -1;
    }
    r = wait_for_job(manager, reply, "StopUnit", timeout_ms, error, error_size);
    sd_bus_message_unref(reply);
    return r;
}
