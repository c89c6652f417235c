#include <sqlite3.h>
static inline sqlite3_destructor_type csqlite_ceiling_transient(void) { return SQLITE_TRANSIENT; }
