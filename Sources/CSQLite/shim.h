// CSQLite: the system libsqlite3, plus shims for the parts of its API that Swift cannot import
// (macro constants and variadic functions).
#ifndef CSQLITE_SHIM_H
#define CSQLITE_SHIM_H
#include <sqlite3.h>

/// SQLITE_TRANSIENT is a macro cast of -1 to a function pointer; Swift cannot import it.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }

/// SQLITE_STATIC (NULL destructor): SQLite does not copy, the caller keeps the bytes alive until reset.
static inline sqlite3_destructor_type csqlite_static(void) { return SQLITE_STATIC; }

/// Wraps the variadic sqlite3_db_config for the integer-flag options.
static inline int csqlite_db_config_int(sqlite3 *db, int op, int value, int *out) {
    return sqlite3_db_config(db, op, value, out);
}
/// Wraps the variadic sqlite3_config for SQLITE_CONFIG_MEMSTATUS (process-wide allocation statistics, kept under
/// a global mutex taken by every SQLite allocation). Effective only before SQLite initializes; later calls return
/// SQLITE_MISUSE and change nothing.
static inline int csqlite_config_memstatus(int on) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, on); }
/// A valid pointer to an empty C string, for binding zero-length text.
static inline const char *csqlite_empty_text(void) { return ""; }
#endif
