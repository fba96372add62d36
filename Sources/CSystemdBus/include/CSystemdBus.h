#ifndef RELEASECTL_SYSTEMD_BUS_H
#define RELEASECTL_SYSTEMD_BUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// A connection to the service manager (systemd): its private socket as root, else the
/// system bus. Not thread-safe: one thread at a time.
typedef struct rc_manager rc_manager;

/// Connects; NULL on failure, with the reason in `error`.
rc_manager *rc_manager_open(char *error, size_t error_size);
void rc_manager_close(rc_manager *manager);

/// What a transient unit is made with; 0 (or NULL) leaves a setting out.
typedef struct {
    const char *description;
    /// The slice the unit goes into (scopes).
    const char *slice;
    /// The process that moves into it (scopes).
    pid_t pid;
    uint64_t memory_max;
    /// CPU time per second of wall time, in microseconds (1.5 cores: 1500000).
    uint64_t cpu_quota_usec;
    uint64_t tasks_max;
} rc_unit_settings;

/// StartTransientUnit(name, "fail", settings) with Delegate=no and accounting on, then waits
/// (up to `timeout_ms`) for its job to finish. 0, or -1 with the reason in `error`.
int rc_manager_start_unit(rc_manager *manager, const char *name, const rc_unit_settings *settings, int timeout_ms,
                          char *error, size_t error_size);

/// StopUnit(name, "replace"), which ends every process left in it, then waits for the job.
int rc_manager_stop_unit(rc_manager *manager, const char *name, int timeout_ms, char *error, size_t error_size);

#endif
