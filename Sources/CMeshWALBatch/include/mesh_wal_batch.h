// CMeshWALBatch: an SQLite VFS that hands a transaction's WAL frames to the kernel in one write.
//
// SQLite appends a WAL frame as two writes (its 24-byte header, then the page), so a commit of N pages costs
// 2N write system calls. This VFS wraps the default one ("unix"); for WAL files only, it gathers appended
// writes in memory and writes them at once when the commit frame is complete — before SQLite publishes the
// frames in the WAL index, so no reader, checkpointer or crash can observe anything but what SQLite itself
// would have written by then. Every other file and every other operation goes to the default VFS unchanged.
#ifndef MESH_WAL_BATCH_H
#define MESH_WAL_BATCH_H
#include <sqlite3.h>

/// The name connections pass to sqlite3_open_v2 to use the VFS.
#define MESH_WAL_BATCH_VFS_NAME "mesh-wal-batch"

/// Registers the VFS (not as the default) once per process; later calls return the first result.
/// Returns SQLITE_OK, or the error of sqlite3_vfs_register / a missing default VFS.
int mesh_wal_batch_register(void);

/// Counters of the WAL file of `db`'s main database, if it is open through this VFS: `appends` is the number
/// of writes SQLite made to it, `writes` the number the VFS made to the file, `syncs` the syncs SQLite asked for.
/// Returns 0 and leaves the outputs unchanged if the WAL is not open (no transaction yet) or not through this VFS;
/// 1 otherwise.
int mesh_wal_batch_counters(sqlite3 *db, sqlite3_int64 *appends, sqlite3_int64 *writes, sqlite3_int64 *syncs);

/// Makes the WAL file of `db`'s main database (open through this VFS) grow ahead of its frames: a thread of its
/// own (at nice 10) keeps the file's end about `aheadBytes` past the last frame (as far as the log is long while it
/// is shorter, from 512 KiB; never filling past `capBytes`) by writing zeros — synced if `syncs`, for a connection
/// whose commits are (`synchronous=FULL`) — so that a commit's write overwrites blocks the file already has, and a
/// synchronous commit's fsync never waits for the file to grow.
/// Zeros past the last frame end SQLite's log as any stale tail does. Call on the connection's thread once its
/// WAL is open; the thread stops when the WAL file closes. Returns 0 if the WAL is not open, not through this
/// VFS, already growing ahead, or the thread could not start; 1 otherwise.
int mesh_wal_batch_set_growth(sqlite3 *db, sqlite3_int64 aheadBytes, sqlite3_int64 capBytes, int syncs);

/// Asks the grower of `db`'s WAL file (mesh_wal_batch_set_growth) to fdatasync the file, on its own thread, within
/// `withinMicroseconds` — unless the connection syncs the file first (a later commit's sync covers the same frames):
/// for a commit made without a sync, whose frames reach the disk without the connection's thread waiting for it,
/// and without a second sync beside the next commit's when one follows soon. A request still pending (not yet
/// covered by a sync of the connection's) keeps the earlier time. Call on the connection's thread after the commit.
/// Returns 0 (and asks nothing) if the WAL is not open, not through this VFS or not growing ahead; 1 otherwise.
int mesh_wal_batch_sync_soon(sqlite3 *db, sqlite3_int64 withinMicroseconds);

/// For tests: pauses (`paused` 1) or resumes (0) the grower of `db`'s WAL file; paused, it neither grows the file nor
/// makes or skips a sync asked for, so a test can order requests and the connection's syncs around it. Do not wait
/// for it to be idle while it is paused. Returns 0 if the WAL is not growing ahead; 1 otherwise.
int mesh_wal_batch_pause_grower(sqlite3 *db, int paused);

/// The growth ahead of `db`'s WAL file: the zero-filling writes made so far (`steps`), the bytes the file holds
/// (`allocated`), the syncs made for mesh_wal_batch_sync_soon (`backgroundSyncs`) and those left to a sync of the
/// connection's that came first (`skippedSyncs`), after waiting for the grower to finish what it was asked if
/// `waitIdle` (for tests; a sync asked for is waited for until it is made or skipped). Returns 0 and leaves the
/// outputs unchanged if the WAL is not open or not growing ahead; 1 otherwise.
int mesh_wal_batch_growth(sqlite3 *db, int waitIdle, sqlite3_int64 *steps, sqlite3_int64 *allocated,
                          sqlite3_int64 *backgroundSyncs, sqlite3_int64 *skippedSyncs);
#endif
