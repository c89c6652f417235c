// The WAL write-batching VFS (see include/mesh_wal_batch.h).
//
// How SQLite writes a WAL (3.x, sqlite3WalFrames): for each frame of a transaction, a 24-byte frame header, then
// the page, at increasing offsets; the last frame of a commit carries the database size in bytes 4-7 of its
// header (non-zero only there). Only after every frame is written (and synced, if the durability asks) does
// SQLite add the frames to the WAL index and publish the new end of the log in its header: before that, no
// other connection reads them. So writing the buffered frames when the commit frame's page arrives — inside the
// very xWrite call SQLite makes for it — hands the kernel exactly what the default VFS would have by the time
// SQLite publishes the commit.
//
// Everything that could observe the file (a read, a sync, a truncate, its size, a file control, close) first
// writes what is buffered. A write that does not extend the buffer (SQLite rewriting an earlier frame's
// checksum, a new log starting at offset 0) first writes the buffer, unless it lies inside it (then it is
// patched in place, as the file would be). Memory per WAL file: one buffer of MESH_WAL_BATCH_MAX_BUFFER bytes;
// a transaction larger than that is written in several calls (each at most that size).
//
// Growth ahead (opt-in per file, mesh_wal_batch_set_growth): a thread of the file's own (the grower) keeps the
// file's end ahead of the frames by writing zeros past it, a step at a time (synced, for a connection whose
// commits are). A commit's write then overwrites blocks the file already has instead of reserving new ones and
// moving the file's size (on ext4 a 16 KiB append costs about three times an overwrite), and a synchronous
// commit's fdatasync no longer journals the file's new size and blocks (about twice the cost of one overwriting
// the file), without waiting for zeros to reach the disk. Zeros past the last frame are what SQLite's recovery
// expects of any WAL tail: a frame whose salt does not match the header's ends the log. The grower claims a step
// at `allocated` under the grower's lock, writes it without the lock, then moves `allocated` past it; the
// connection writes past `allocated` only under the lock, once no step is in flight (moving `allocated` too), so
// no zero ever lands on a frame. The connection waits for a step in flight only when it must write past it (the
// grower fell behind), restarts the log at offset 0, or truncates the file. A failed step (a full disk) stops the
// growing; the frames are then written as without it.
//
// Syncs asked of the grower (mesh_wal_batch_sync_soon): a connection that commits without a sync (a transaction
// nobody waits on, under `.full`) asks the grower to fdatasync the file by a given time. The grower leaves it out if
// the connection completed a sync of its own meanwhile (walSync counts them under the grower's lock): that sync
// covered the same frames, and a second one beside it would only queue behind it.
//
// Threading: SQLite calls a file's methods from one thread at a time (the connection's); the counters are read
// through the connection, on its thread. A grower's state is shared by that thread and the grower's, under the
// grower's lock. The VFS object itself is written once, under pthread_once.
#define _GNU_SOURCE
#include "mesh_wal_batch.h"
#include "mesh_thread.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The most the default VFS takes in one write: its unix write masks the length to 17 bits (SQLite itself never
   writes more than a page at once). A transaction larger than this is written in several calls. */
#define MESH_WAL_BATCH_MAX_BUFFER 0x1ffff
#define MESH_WAL_FRAME_HEADER 24

typedef struct MeshWALFile {
    sqlite3_file base;           /* pMethods = &walMethods */
    sqlite3_file *real;          /* the default VFS's file, in the memory right after this struct */
    unsigned char *buffer;
    sqlite3_int64 start;         /* file offset of buffer[0] */
    int length;
    int commitHeaderBuffered;    /* the last append was a commit frame's header: its page ends the commit */
    sqlite3_int64 appends;       /* writes SQLite made */
    sqlite3_int64 writes;        /* writes made to the file */
    sqlite3_int64 syncs;         /* syncs SQLite asked for (xSync) */
    const char *path;            /* SQLite's name for the file, valid until xClose */
    struct MeshWALGrower *grower; /* growth ahead, if turned on */
} MeshWALFile;

/* Zeros, written in steps of at most this size; the grower syncs after every MESH_WAL_GROWTH_SYNC bytes. Few,
   large steps rather than many small ones: each step is a wake-up of the grower and a write that, under a kernel
   built to preempt nothing inside a system call (preempt=none, common on servers), keeps its core until it
   returns, while a node thread woken on that core waits (README, Benchmarks: the grower's step). */
#define MESH_WAL_GROWTH_STEP 262144
#define MESH_WAL_GROWTH_SYNC MESH_WAL_GROWTH_STEP
static const unsigned char zeros[MESH_WAL_GROWTH_STEP];

typedef struct MeshWALGrower {
    pthread_mutex_t lock;
    pthread_cond_t wake;         /* the grower waits on it for work or for stopping */
    pthread_cond_t idle;         /* signalled when the grower has nothing left to do */
    int fd;                      /* the grower's own descriptor of the file */
    sqlite3_int64 allocated;     /* the file holds zeros or frames up to here */
    sqlite3_int64 wanted;        /* the grower fills up to here */
    sqlite3_int64 ahead;         /* how far past the frames' end the file is kept (once the log is that long) */
    sqlite3_int64 cap;           /* the grower never fills past this */
    sqlite3_int64 steps;         /* zero-filling writes made */
    pthread_cond_t stepDone;     /* signalled when a claimed step is written */
    int filling;                 /* a step at `allocated` is being written (without the lock) */
    int syncs;                   /* steps are synced (for a connection whose commits are) */
    int syncWanted;              /* mesh_wal_batch_sync_soon asked for a sync of the file, not made nor skipped yet */
    struct timespec syncDue;     /* ... by this time (CLOCK_MONOTONIC) */
    sqlite3_int64 syncsAtRequest; /* `connectionSyncs` when it was asked */
    sqlite3_int64 connectionSyncs; /* syncs of the file the connection completed (its commits') */
    sqlite3_int64 backgroundSyncs; /* syncs the grower made for mesh_wal_batch_sync_soon */
    sqlite3_int64 skippedSyncs;  /* ... and those it left to a sync of the connection's that came first */
    int paused;                  /* mesh_wal_batch_pause_grower (tests): the grower does nothing until resumed */
    int working;
    int failed;
    int stopping;
    pthread_t thread;
} MeshWALGrower;

static struct timespec monotonicNow(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now;
}

static int timeBefore(struct timespec a, struct timespec b) {
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

/* Under the grower's lock: fdatasyncs the file without the lock while it runs (the connection takes it at every
   commit). */
static void growerSync(MeshWALGrower *g) {
    pthread_mutex_unlock(&g->lock);
    fdatasync(g->fd);
    pthread_mutex_lock(&g->lock);
}

/* Under the grower's lock: makes the sync mesh_wal_batch_sync_soon asked for (one fdatasync covers every frame
   written before the request). */
static void growerSyncAsked(MeshWALGrower *g) {
    g->syncWanted = 0;
    growerSync(g);
    g->backgroundSyncs++;
}

static void *growerMain(void *argument) {
    MeshWALGrower *g = argument;
    pthread_setname_np(pthread_self(), "mesh-journal-g");
    mesh_thread_lower_priority();  /* background work */
    sqlite3_int64 unsynced = 0;
    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        if (g->paused) {
            g->working = 0;
            pthread_cond_wait(&g->wake, &g->lock);
            continue;
        }
        if (g->syncWanted && g->connectionSyncs != g->syncsAtRequest) {
            /* The connection synced the file since it asked (a later commit's sync): that covered the frames. */
            g->syncWanted = 0;
            g->skippedSyncs++;
            continue;
        }
        if (g->syncWanted && !timeBefore(monotonicNow(), g->syncDue)) {
            /* Its time is up and no sync of the connection's came since; it also syncs every zero step so far. */
            g->working = 1;
            unsynced = 0;
            growerSyncAsked(g);
            continue;
        }
        if (g->failed || g->allocated >= g->wanted) {
            if (g->syncs && unsynced > 0) {
                unsynced = 0;
                growerSync(g);
                continue;
            }
            g->working = 0;
            pthread_cond_broadcast(&g->idle);
            if (g->syncWanted) {
                pthread_cond_timedwait(&g->wake, &g->lock, &g->syncDue);
            } else {
                pthread_cond_wait(&g->wake, &g->lock);
            }
            continue;
        }
        g->working = 1;
        sqlite3_int64 offset = g->allocated;
        sqlite3_int64 step = g->wanted - offset;
        if (step > MESH_WAL_GROWTH_STEP) step = MESH_WAL_GROWTH_STEP;
        /* The step is claimed: until it is done, the connection writes past `allocated` only after waiting for it
           (walWriteThrough), so these zeros land past every frame. Written without the lock, which the connection
           takes at every commit. */
        g->filling = 1;
        pthread_mutex_unlock(&g->lock);
        ssize_t written = pwrite(g->fd, zeros, (size_t)step, offset);
        pthread_mutex_lock(&g->lock);
        g->filling = 0;
        pthread_cond_broadcast(&g->stepDone);
        if (written != step) {
            g->failed = 1;
            continue;
        }
        g->allocated = offset + step;
        g->steps++;
        unsynced += step;
        if (g->syncs && unsynced >= MESH_WAL_GROWTH_SYNC) {
            unsynced = 0;
            growerSync(g);
        }
    }
    /* Stopping (the file closes) with a sync asked for and not covered: made now, not dropped. */
    if (g->syncWanted && g->connectionSyncs == g->syncsAtRequest) growerSyncAsked(g);
    g->working = 0;
    pthread_cond_broadcast(&g->idle);
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

/* The least the grower keeps ahead: a small log (a short-lived journal, a tool's) gets as much room as it has
   frames, from this much up to `ahead`. */
#define MESH_WAL_GROWTH_MIN_AHEAD (2 * MESH_WAL_GROWTH_STEP)

/* Under the grower's lock: the frames now end at `end`; asks for more room once less than half of the room kept
   ahead is left. */
static void growerNoteEnd(MeshWALGrower *g, sqlite3_int64 end) {
    sqlite3_int64 ahead = end < g->ahead ? end : g->ahead;
    if (ahead < MESH_WAL_GROWTH_MIN_AHEAD) ahead = MESH_WAL_GROWTH_MIN_AHEAD;
    if (g->failed || end + ahead / 2 <= g->allocated) return;
    sqlite3_int64 target = end + ahead;
    if (target > g->cap) target = g->cap;
    if (target > g->wanted) {
        g->wanted = target;
        pthread_cond_signal(&g->wake);
    }
}

/* Releases a grower whose thread has ended or never started. */
static void growerFree(MeshWALGrower *g) {
    close(g->fd);
    pthread_cond_destroy(&g->wake);
    pthread_cond_destroy(&g->idle);
    pthread_cond_destroy(&g->stepDone);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

static void growerStop(MeshWALGrower *g) {
    pthread_mutex_lock(&g->lock);
    g->stopping = 1;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    growerFree(g);
}

/* The file's size, or -1. */
static sqlite3_int64 growerFileSize(MeshWALGrower *g) {
    struct stat st;
    return fstat(g->fd, &st) == 0 ? (sqlite3_int64)st.st_size : -1;
}

static sqlite3_vfs *realVFS;
static sqlite3_vfs meshVFS;
static int registerResult = SQLITE_ERROR;
static pthread_once_t registerOnce = PTHREAD_ONCE_INIT;

/* Writes through to the file. With a grower: past `allocated` only under its lock (so the grower cannot be
   zero-filling there), and tells it where the frames end. */
static int walWriteThrough(MeshWALFile *p, const void *data, int amount, sqlite3_int64 offset) {
    p->writes++;
    MeshWALGrower *g = p->grower;
    if (g == NULL) return p->real->pMethods->xWrite(p->real, data, amount, offset);
    sqlite3_int64 end = offset + amount;
    pthread_mutex_lock(&g->lock);
    /* A new log starts at offset 0 (after a restart, or after another connection truncated the file): ask the
       file its size again rather than trust what was last known. */
    if (offset == 0) {
        while (g->filling) pthread_cond_wait(&g->stepDone, &g->lock);
        sqlite3_int64 size = growerFileSize(g);
        if (size >= 0) g->allocated = size;
    }
    /* Past the filled part: a step being zero-filled there must land first (the grower fell behind). */
    if (end > g->allocated) {
        while (g->filling) pthread_cond_wait(&g->stepDone, &g->lock);
    }
    if (end <= g->allocated) {
        growerNoteEnd(g, end);
        pthread_mutex_unlock(&g->lock);
        return p->real->pMethods->xWrite(p->real, data, amount, offset);
    }
    int rc = p->real->pMethods->xWrite(p->real, data, amount, offset);
    /* A failed write (a full disk) may have extended the file by part of the frames: stop growing rather than
       reason about where its end is. */
    if (rc == SQLITE_OK) g->allocated = end; else g->failed = 1;
    growerNoteEnd(g, end);
    pthread_mutex_unlock(&g->lock);
    return rc;
}

static int walFlush(MeshWALFile *p) {
    if (p->length == 0) return SQLITE_OK;
    int length = p->length;
    p->length = 0;
    p->commitHeaderBuffered = 0;
    return walWriteThrough(p, p->buffer, length, p->start);
}

/* Whether the buffer can hold `needed` bytes (allocated at the first write); 0 past the bound or without memory. */
static int walReserve(MeshWALFile *p, int needed) {
    if (needed > MESH_WAL_BATCH_MAX_BUFFER) return 0;
    if (p->buffer == NULL) {
        p->buffer = malloc(MESH_WAL_BATCH_MAX_BUFFER);
        if (p->buffer == NULL) return 0;
    }
    return 1;
}

static int walWrite(sqlite3_file *file, const void *data, int amount, sqlite3_int64 offset) {
    MeshWALFile *p = (MeshWALFile *)file;
    p->appends++;
    if (p->length > 0 && offset >= p->start && offset + amount <= p->start + p->length) {
        /* Inside what is buffered (an earlier frame of this transaction rewritten): patch it. */
        memcpy(p->buffer + (offset - p->start), data, (size_t)amount);
        return SQLITE_OK;
    }
    int completesCommit = p->commitHeaderBuffered;
    if (p->length > 0 && offset != p->start + p->length) {
        int rc = walFlush(p);
        if (rc != SQLITE_OK) return rc;
    }
    if (!walReserve(p, p->length + amount)) {
        int rc = walFlush(p);
        if (rc != SQLITE_OK) return rc;
        if (!walReserve(p, amount)) {
            /* Too large to buffer, or no memory: write it through, as the default VFS would. */
            return walWriteThrough(p, data, amount, offset);
        }
    }
    if (p->length == 0) p->start = offset;
    memcpy(p->buffer + p->length, data, (size_t)amount);
    p->length += amount;
    /* The page after a commit frame's header completes the commit: hand the transaction to the kernel now. */
    if (completesCommit) return walFlush(p);
    if (amount == MESH_WAL_FRAME_HEADER) {
        const unsigned char *header = data;
        p->commitHeaderBuffered = (header[4] | header[5] | header[6] | header[7]) != 0;
    }
    return SQLITE_OK;
}

static int walClose(sqlite3_file *file) {
    MeshWALFile *p = (MeshWALFile *)file;
    int rc = walFlush(p);
    if (p->grower != NULL) {
        growerStop(p->grower);
        p->grower = NULL;
    }
    int closed = p->real->pMethods->xClose(p->real);
    free(p->buffer);
    p->buffer = NULL;
    return rc != SQLITE_OK ? rc : closed;
}

static int walRead(sqlite3_file *file, void *data, int amount, sqlite3_int64 offset) {
    MeshWALFile *p = (MeshWALFile *)file;
    int rc = walFlush(p);
    return rc != SQLITE_OK ? rc : p->real->pMethods->xRead(p->real, data, amount, offset);
}

static int walTruncate(sqlite3_file *file, sqlite3_int64 size) {
    MeshWALFile *p = (MeshWALFile *)file;
    int rc = walFlush(p);
    if (rc != SQLITE_OK) return rc;
    MeshWALGrower *g = p->grower;
    if (g == NULL) return p->real->pMethods->xTruncate(p->real, size);
    pthread_mutex_lock(&g->lock);
    while (g->filling) pthread_cond_wait(&g->stepDone, &g->lock);
    rc = p->real->pMethods->xTruncate(p->real, size);
    sqlite3_int64 now = growerFileSize(g);
    if (now >= 0) g->allocated = now;
    if (g->wanted > g->allocated) g->wanted = g->allocated;
    pthread_mutex_unlock(&g->lock);
    return rc;
}

static int walSync(sqlite3_file *file, int flags) {
    MeshWALFile *p = (MeshWALFile *)file;
    p->syncs++;
    int rc = walFlush(p);
    if (rc != SQLITE_OK) return rc;
    rc = p->real->pMethods->xSync(p->real, flags);
    if (rc == SQLITE_OK && p->grower != NULL) {
        pthread_mutex_lock(&p->grower->lock);
        p->grower->connectionSyncs++;
        if (p->grower->syncWanted) pthread_cond_signal(&p->grower->wake);
        pthread_mutex_unlock(&p->grower->lock);
    }
    return rc;
}

static int walFileSize(sqlite3_file *file, sqlite3_int64 *size) {
    MeshWALFile *p = (MeshWALFile *)file;
    int rc = walFlush(p);
    return rc != SQLITE_OK ? rc : p->real->pMethods->xFileSize(p->real, size);
}

static int walLock(sqlite3_file *file, int level) {
    MeshWALFile *p = (MeshWALFile *)file;
    return p->real->pMethods->xLock(p->real, level);
}

static int walUnlock(sqlite3_file *file, int level) {
    MeshWALFile *p = (MeshWALFile *)file;
    int rc = walFlush(p);
    int unlocked = p->real->pMethods->xUnlock(p->real, level);
    return rc != SQLITE_OK ? rc : unlocked;
}

static int walCheckReservedLock(sqlite3_file *file, int *out) {
    MeshWALFile *p = (MeshWALFile *)file;
    return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int walFileControl(sqlite3_file *file, int op, void *arg) {
    MeshWALFile *p = (MeshWALFile *)file;
    int rc = walFlush(p);
    return rc != SQLITE_OK ? rc : p->real->pMethods->xFileControl(p->real, op, arg);
}

static int walSectorSize(sqlite3_file *file) {
    MeshWALFile *p = (MeshWALFile *)file;
    return p->real->pMethods->xSectorSize(p->real);
}

static int walDeviceCharacteristics(sqlite3_file *file) {
    MeshWALFile *p = (MeshWALFile *)file;
    return p->real->pMethods->xDeviceCharacteristics(p->real);
}

/* Version 1: a WAL file is never memory-mapped and has no shared memory of its own (that belongs to the
   database file, which the default VFS serves directly). */
static const sqlite3_io_methods walMethods = {
    1,
    walClose,
    walRead,
    walWrite,
    walTruncate,
    walSync,
    walFileSize,
    walLock,
    walUnlock,
    walCheckReservedLock,
    walFileControl,
    walSectorSize,
    walDeviceCharacteristics,
    0, 0, 0, 0, 0, 0,
};

static int meshOpen(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *outFlags) {
    (void)vfs;
    if ((flags & SQLITE_OPEN_WAL) == 0) return realVFS->xOpen(realVFS, name, file, flags, outFlags);
    MeshWALFile *p = (MeshWALFile *)file;
    memset(p, 0, sizeof(*p));
    p->real = (sqlite3_file *)&p[1];
    int rc = realVFS->xOpen(realVFS, name, p->real, flags, outFlags);
    if (rc != SQLITE_OK) {
        if (p->real->pMethods != NULL) p->real->pMethods->xClose(p->real);
        p->base.pMethods = NULL;
        return rc;
    }
    p->path = name;
    p->base.pMethods = &walMethods;
    return SQLITE_OK;
}

static int meshDelete(sqlite3_vfs *vfs, const char *name, int syncDir) {
    (void)vfs;
    return realVFS->xDelete(realVFS, name, syncDir);
}

static int meshAccess(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
    (void)vfs;
    return realVFS->xAccess(realVFS, name, flags, out);
}

static int meshFullPathname(sqlite3_vfs *vfs, const char *name, int size, char *out) {
    (void)vfs;
    return realVFS->xFullPathname(realVFS, name, size, out);
}

static void *meshDlOpen(sqlite3_vfs *vfs, const char *name) {
    (void)vfs;
    return realVFS->xDlOpen(realVFS, name);
}

static void meshDlError(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    realVFS->xDlError(realVFS, size, out);
}

static void (*meshDlSym(sqlite3_vfs *vfs, void *handle, const char *symbol))(void) {
    (void)vfs;
    return realVFS->xDlSym(realVFS, handle, symbol);
}

static void meshDlClose(sqlite3_vfs *vfs, void *handle) {
    (void)vfs;
    realVFS->xDlClose(realVFS, handle);
}

static int meshRandomness(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    return realVFS->xRandomness(realVFS, size, out);
}

static int meshSleep(sqlite3_vfs *vfs, int microseconds) {
    (void)vfs;
    return realVFS->xSleep(realVFS, microseconds);
}

static int meshCurrentTime(sqlite3_vfs *vfs, double *out) {
    (void)vfs;
    return realVFS->xCurrentTime(realVFS, out);
}

static int meshGetLastError(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    return realVFS->xGetLastError ? realVFS->xGetLastError(realVFS, size, out) : 0;
}

static int meshCurrentTimeInt64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
    (void)vfs;
    if (realVFS->iVersion >= 2 && realVFS->xCurrentTimeInt64) return realVFS->xCurrentTimeInt64(realVFS, out);
    double now = 0;
    int rc = realVFS->xCurrentTime(realVFS, &now);
    *out = (sqlite3_int64)(now * 86400000.0);
    return rc;
}

static void registerVFS(void) {
    realVFS = sqlite3_vfs_find(NULL);
    if (realVFS == NULL) return;
    memset(&meshVFS, 0, sizeof(meshVFS));
    meshVFS.iVersion = 2;
    meshVFS.szOsFile = (int)sizeof(MeshWALFile) + realVFS->szOsFile;
    meshVFS.mxPathname = realVFS->mxPathname;
    meshVFS.zName = MESH_WAL_BATCH_VFS_NAME;
    meshVFS.xOpen = meshOpen;
    meshVFS.xDelete = meshDelete;
    meshVFS.xAccess = meshAccess;
    meshVFS.xFullPathname = meshFullPathname;
    meshVFS.xDlOpen = meshDlOpen;
    meshVFS.xDlError = meshDlError;
    meshVFS.xDlSym = meshDlSym;
    meshVFS.xDlClose = meshDlClose;
    meshVFS.xRandomness = meshRandomness;
    meshVFS.xSleep = meshSleep;
    meshVFS.xCurrentTime = meshCurrentTime;
    meshVFS.xGetLastError = meshGetLastError;
    meshVFS.xCurrentTimeInt64 = meshCurrentTimeInt64;
    registerResult = sqlite3_vfs_register(&meshVFS, 0);
}

int mesh_wal_batch_register(void) {
    pthread_once(&registerOnce, registerVFS);
    return registerResult;
}

/* The WAL file of `db`'s main database if it is open through this VFS, else NULL. */
static MeshWALFile *walFileOf(sqlite3 *db) {
    sqlite3_file *file = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file) != SQLITE_OK) return NULL;
    if (file == NULL || file->pMethods != &walMethods) return NULL;
    return (MeshWALFile *)file;
}

int mesh_wal_batch_counters(sqlite3 *db, sqlite3_int64 *appends, sqlite3_int64 *writes, sqlite3_int64 *syncs) {
    MeshWALFile *p = walFileOf(db);
    if (p == NULL) return 0;
    *appends = p->appends;
    *writes = p->writes;
    *syncs = p->syncs;
    return 1;
}

int mesh_wal_batch_sync_soon(sqlite3 *db, sqlite3_int64 withinMicroseconds) {
    MeshWALFile *p = walFileOf(db);
    if (p == NULL || p->grower == NULL) return 0;
    MeshWALGrower *g = p->grower;
    struct timespec due = monotonicNow();
    if (withinMicroseconds > 0) {
        due.tv_sec += (time_t)(withinMicroseconds / 1000000);
        due.tv_nsec += (long)(withinMicroseconds % 1000000) * 1000;
        if (due.tv_nsec >= 1000000000L) {
            due.tv_sec += 1;
            due.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&g->lock);
    if (g->syncWanted && g->connectionSyncs == g->syncsAtRequest) {
        /* A request still pending and not yet covered keeps its earlier time (its frames must not wait longer); a
           sync that covers the new frames covers its frames too. */
        if (timeBefore(due, g->syncDue)) g->syncDue = due;
    } else {
        /* A new request — or one a sync of the connection's already covered, which must not cover these frames. */
        g->syncDue = due;
        g->syncsAtRequest = g->connectionSyncs;
    }
    g->syncWanted = 1;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    return 1;
}

int mesh_wal_batch_set_growth(sqlite3 *db, sqlite3_int64 aheadBytes, sqlite3_int64 capBytes, int syncs) {
    MeshWALFile *p = walFileOf(db);
    if (p == NULL || p->path == NULL || aheadBytes <= 0 || p->grower != NULL) return 0;
    MeshWALGrower *g = calloc(1, sizeof(MeshWALGrower));
    if (g == NULL) return 0;
    g->fd = open(p->path, O_WRONLY | O_CLOEXEC);
    if (g->fd < 0) {
        free(g);
        return 0;
    }
    g->ahead = aheadBytes;
    g->syncs = syncs != 0;
    g->cap = capBytes;
    g->allocated = growerFileSize(g);
    if (g->allocated < 0) g->allocated = 0;
    g->wanted = g->allocated;
    pthread_mutex_init(&g->lock, NULL);
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);  /* syncDue is on that clock */
    pthread_cond_init(&g->wake, &monotonic);
    pthread_condattr_destroy(&monotonic);
    pthread_cond_init(&g->idle, NULL);
    pthread_cond_init(&g->stepDone, NULL);
    if (pthread_create(&g->thread, NULL, growerMain, g) != 0) {
        growerFree(g);
        return 0;
    }
    p->grower = g;
    return 1;
}

int mesh_wal_batch_pause_grower(sqlite3 *db, int paused) {
    MeshWALFile *p = walFileOf(db);
    if (p == NULL || p->grower == NULL) return 0;
    pthread_mutex_lock(&p->grower->lock);
    p->grower->paused = paused != 0;
    pthread_cond_signal(&p->grower->wake);
    pthread_mutex_unlock(&p->grower->lock);
    return 1;
}

int mesh_wal_batch_growth(sqlite3 *db, int waitIdle, sqlite3_int64 *steps, sqlite3_int64 *allocated,
                          sqlite3_int64 *backgroundSyncs, sqlite3_int64 *skippedSyncs) {
    MeshWALFile *p = walFileOf(db);
    if (p == NULL || p->grower == NULL) return 0;
    MeshWALGrower *g = p->grower;
    pthread_mutex_lock(&g->lock);
    while (waitIdle && (g->working || g->syncWanted || (!g->failed && g->allocated < g->wanted))) {
        pthread_cond_wait(&g->idle, &g->lock);
    }
    *steps = g->steps;
    *allocated = g->allocated;
    *backgroundSyncs = g->backgroundSyncs;
    *skippedSyncs = g->skippedSyncs;
    pthread_mutex_unlock(&g->lock);
    return 1;
}
