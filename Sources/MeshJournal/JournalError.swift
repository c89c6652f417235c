/// Why the journal refused an operation. Opening refuses a file it cannot trust *before* changing it.
public struct JournalError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The category of failure; compare with `==` against the statics.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case notSQLite, notAMeshJournal, newerVersion, migrationChanged, corrupt, fileNotFound, needsMigration
            case invalidConfiguration, diskFull, busy, closed, sqlite, invalidArgument, inUse
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The file is not an SQLite database.
        public static let notSQLite = Code(.notSQLite)
        /// The file is an SQLite database that Mesh did not create.
        public static let notAMeshJournal = Code(.notAMeshJournal)
        /// The journal was written by a newer Mesh (it has migrations this build does not know).
        public static let newerVersion = Code(.newerVersion)
        /// A migration recorded in the journal differs from this build's copy of it.
        public static let migrationChanged = Code(.migrationChanged)
        /// SQLite reports the file as malformed.
        public static let corrupt = Code(.corrupt)
        /// The file does not exist and the configuration does not allow creating it.
        public static let fileNotFound = Code(.fileNotFound)
        /// The journal is older than this build and was opened read-only, so it cannot be migrated.
        public static let needsMigration = Code(.needsMigration)
        /// A ``JournalConfiguration`` setting is out of range.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The disk (or SQLite's page limit) is full; nothing of the failed write was kept.
        public static let diskFull = Code(.diskFull)
        /// Another connection held the lock past the busy timeout.
        public static let busy = Code(.busy)
        /// The journal was closed.
        public static let closed = Code(.closed)
        /// Any other SQLite error; ``JournalError/underlying`` has the details.
        public static let sqlite = Code(.sqlite)
        /// An argument was out of range.
        public static let invalidArgument = Code(.invalidArgument)
        /// Another node (or `mesh journal migrate`) has the journal open for writing: a journal has one owner.
        public static let inUse = Code(.inUse)

        /// A short name for the code.
        public var description: String {
            switch base {
            case .notSQLite: "not an SQLite database"
            case .notAMeshJournal: "not a Mesh journal"
            case .newerVersion: "journal from a newer version"
            case .migrationChanged: "migration changed"
            case .corrupt: "journal corrupt"
            case .fileNotFound: "journal not found"
            case .needsMigration: "journal needs migration"
            case .invalidConfiguration: "invalid configuration"
            case .diskFull: "disk full"
            case .busy: "journal busy"
            case .closed: "journal closed"
            case .sqlite: "SQLite error"
            case .invalidArgument: "invalid argument"
            case .inUse: "journal in use"
            }
        }
    }

    /// The category of failure.
    public let code: Code
    /// What happened, in words, naming the file or setting at fault.
    public let message: String
    /// The SQLite error behind this one, if any.
    public let underlying: SQLiteError?

    /// Creates an error.
    public init(_ code: Code, _ message: String, underlying: SQLiteError? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    /// Classifies an SQLite error: disk full, busy and corruption get their own codes.
    public init(_ error: SQLiteError, context: String) {
        let code: Code = switch error.primaryCode {
        case SQLiteError.full: .diskFull
        case SQLiteError.busy: .busy
        case SQLiteError.corrupt: .corrupt
        case SQLiteError.notADatabase: .notSQLite
        default: .sqlite
        }
        self.init(code, "\(context): \(error.message)", underlying: error)
    }

    /// `code: message`, one line.
    public var description: String { "\(code): \(message)" }
}
