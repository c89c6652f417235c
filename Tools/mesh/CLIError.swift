/// A failure at run time (not a misuse of arguments): printed as one `Error: …` line, exit code 1, no usage.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
