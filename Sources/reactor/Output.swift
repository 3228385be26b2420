#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Prints a line at once, even when standard output is a pipe.
func say(_ line: String) {
    print(line)
    fflush(nil)
}

/// Replaces the current line of the terminal with `text`: a progress line that updates in
/// place. An empty `text` clears it, leaving the cursor at its start.
func rewriteLine(_ text: String) {
    let width = 79
    let padding = String(repeating: " ", count: max(0, width - text.count))
    print("\r" + text + padding + (text.isEmpty ? "\r" : ""), terminator: "")
    fflush(nil)
}
