/// What job loading may ask of the file system, as closures, so the loader stays pure and tests
/// give it a folder in memory. `InputFiles.LocalFiles` is the real one.
public struct FileAccess: Sendable {
    public struct Status: Sendable, Equatable {
        public enum Kind: Sendable, Equatable { case file, directory, other }
        public var kind: Kind
        public var size: Int64
        /// Seconds since 1970.
        public var modified: Double
        /// Whether this process may read it.
        public var readable: Bool

        public init(kind: Kind, size: Int64 = 0, modified: Double = 0, readable: Bool = true) {
            self.kind = kind
            self.size = size
            self.modified = modified
            self.readable = readable
        }
    }

    /// The status of a path, following symbolic links (nil: nothing there).
    public var status: @Sendable (String) -> Status?
    /// The names in a folder (nil: not a folder, or unreadable).
    public var list: @Sendable (String) -> [String]?
    /// Up to `count` first bytes of a file (nil: unreadable).
    public var readPrefix: @Sendable (String, Int) -> [UInt8]?
    /// The path with every symbolic link and `..` resolved (nil: it does not exist).
    public var realPath: @Sendable (String) -> String?
    /// A text file's content.
    public var readText: @Sendable (String) throws -> String

    public init(
        status: @escaping @Sendable (String) -> Status?, list: @escaping @Sendable (String) -> [String]?,
        readPrefix: @escaping @Sendable (String, Int) -> [UInt8]?, realPath: @escaping @Sendable (String) -> String?,
        readText: @escaping @Sendable (String) throws -> String
    ) {
        self.status = status
        self.list = list
        self.readPrefix = readPrefix
        self.realPath = realPath
        self.readText = readText
    }
}

/// File-name patterns: `*`, `?` and `[…]` within a name, `**` for any depth of folders. Matches
/// are sorted by path. Names starting with `.` match only a pattern part that starts with `.`.
public enum Glob {
    public struct Problem: Error, Sendable, Equatable {
        public var message: String
    }

    /// Whether the pattern has anything to expand.
    public static func isPattern(_ text: String) -> Bool { text.contains { "*?[".contains($0) } }

    /// Every file matching `pattern` (a path: absolute, or relative to `base`). A match whose real
    /// path leaves the folder the pattern starts from (a symbolic link pointing outside) is
    /// refused: only what the user wrote may reach outside.
    public static func expand(_ pattern: String, base: String, files: FileAccess) -> Result<[String], Problem> {
        let full = pattern.hasPrefix("/") || base.isEmpty ? pattern : base + "/" + pattern
        var parts = full.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var root = full.hasPrefix("/") ? "/" : ""
        // The literal folders before the first part with a wildcard.
        while let first = parts.first, !isPattern(first), parts.count > 1 {
            root = root.isEmpty ? first : (root == "/" ? "/" + first : root + "/" + first)
            parts.removeFirst()
        }
        if root.isEmpty { root = "." }
        guard files.status(root)?.kind == .directory else { return .failure(Problem(message: "no such folder: \(root)")) }
        var found: [String] = []
        walk(root, parts[...], files: files, depth: 0, into: &found)
        guard let realRoot = files.realPath(root) else { return .failure(Problem(message: "cannot resolve \(root)")) }
        for path in found {
            guard let real = files.realPath(path), real == realRoot || real.hasPrefix(realRoot == "/" ? "/" : realRoot + "/") else {
                return .failure(Problem(message: "\(path) leads outside \(root) (a symbolic link); name such files in the job itself"))
            }
        }
        return .success(found.sorted())
    }

    private static func walk(_ folder: String, _ parts: ArraySlice<String>, files: FileAccess, depth: Int, into found: inout [String]) {
        guard let part = parts.first, depth < 64 else { return }
        let rest = parts.dropFirst()
        func join(_ name: String) -> String { folder == "." ? name : (folder == "/" ? "/" + name : folder + "/" + name) }
        if part == "**" {
            // Zero folders, then one more at a time.
            walk(folder, rest, files: files, depth: depth + 1, into: &found)
            for name in (files.list(folder) ?? []).sorted() where !name.hasPrefix(".") {
                let path = join(name)
                if files.status(path)?.kind == .directory { walk(path, parts, files: files, depth: depth + 1, into: &found) }
            }
            return
        }
        let names = isPattern(part) ? (files.list(folder) ?? []).filter { matches($0, part) }.sorted() : [part]
        for name in names {
            let path = join(name)
            guard let status = files.status(path) else { continue }
            if rest.isEmpty {
                if status.kind == .file { found.append(path) }
            } else if status.kind == .directory {
                walk(path, rest, files: files, depth: depth + 1, into: &found)
            }
        }
    }

    /// Whether a name matches one pattern part (`*`, `?`, `[abc]`, `[a-z]`, `[!x]`).
    public static func matches(_ name: String, _ pattern: String) -> Bool {
        if name.hasPrefix(".") && !pattern.hasPrefix(".") { return false }
        return match(Array(name.unicodeScalars)[...], Array(pattern.unicodeScalars)[...])
    }

    private static func match(_ name: ArraySlice<Unicode.Scalar>, _ pattern: ArraySlice<Unicode.Scalar>) -> Bool {
        var name = name
        var pattern = pattern
        while let p = pattern.first {
            switch p {
            case "*":
                let rest = pattern.dropFirst()
                if rest.isEmpty { return true }
                var tail = name
                while true {
                    if match(tail, rest) { return true }
                    guard !tail.isEmpty else { return false }
                    tail = tail.dropFirst()
                }
            case "?":
                guard !name.isEmpty else { return false }
                name = name.dropFirst()
                pattern = pattern.dropFirst()
            case "[":
                guard let c = name.first, let close = pattern.dropFirst(2).firstIndex(of: "]") else { return false }
                var set = pattern[(pattern.startIndex + 1)..<close]
                let negated = set.first == "!" || set.first == "^"
                if negated { set = set.dropFirst() }
                var hit = false
                var index = set.startIndex
                while index < set.endIndex {
                    let low = set[index]
                    if index + 2 < set.endIndex, set[index + 1] == "-" {
                        if low <= c && c <= set[index + 2] { hit = true }
                        index += 3
                    } else {
                        if low == c { hit = true }
                        index += 1
                    }
                }
                guard hit != negated else { return false }
                name = name.dropFirst()
                pattern = pattern[(close + 1)...]
            default:
                guard name.first == p else { return false }
                name = name.dropFirst()
                pattern = pattern.dropFirst()
            }
        }
        return name.isEmpty
    }
}

/// Lists of text read from files: a prompts file (one per line) or a CSV column.
public enum TextSources {
    /// Non-empty lines, without those starting with `#`; `\r\n` endings are fine.
    public static func lines(_ text: String) -> [String] {
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { String($0.hasSuffix("\r") ? $0.dropLast() : $0) }
            .filter { !$0.trimmingSpaces.isEmpty && !$0.hasPrefix("#") }
    }

    public struct CSVProblem: Error, Sendable, Equatable {
        public var message: String
    }

    /// RFC 4180 CSV: a header row naming the columns, then records; quoted fields may hold
    /// commas, quotes (`""`) and line breaks. Returns the named column, one value per record.
    public static func csvColumn(_ text: String, column: String) -> Result<[String], CSVProblem> {
        let rows: [[String]]
        switch csvRows(text) {
        case .success(let parsed): rows = parsed
        case .failure(let problem): return .failure(problem)
        }
        guard let header = rows.first else { return .failure(CSVProblem(message: "empty: a header row naming the columns is needed")) }
        guard let index = header.firstIndex(of: column) else {
            return .failure(CSVProblem(message: "no column \"\(column)\" (columns: \(header.joined(separator: ", ")))"))
        }
        var values: [String] = []
        for (offset, row) in rows.dropFirst().enumerated() where !(row.count == 1 && row[0].isEmpty) {
            guard index < row.count else {
                return .failure(CSVProblem(message: "record \(offset + 1) has \(row.count) field\(row.count == 1 ? "" : "s"), no \"\(column)\""))
            }
            values.append(row[index])
        }
        return .success(values)
    }

    static func csvRows(_ text: String) -> Result<[[String]], CSVProblem> {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var scalars = Array(text.unicodeScalars)[...]
        if scalars.first == "\u{FEFF}" { scalars = scalars.dropFirst() }  // a byte-order mark
        var line = 1
        while let c = scalars.first {
            scalars = scalars.dropFirst()
            if quoted {
                if c == "\"" {
                    if scalars.first == "\"" {
                        field.unicodeScalars.append("\"")
                        scalars = scalars.dropFirst()
                    } else {
                        quoted = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"" where field.isEmpty: quoted = true
            case ",":
                row.append(field)
                field = ""
            case "\r": continue
            case "\n":
                row.append(field)
                rows.append(row)
                row = []
                field = ""
                line += 1
            default: field.unicodeScalars.append(c)
            }
        }
        if quoted { return .failure(CSVProblem(message: "line \(line): a quoted field is not closed")) }
        if !field.isEmpty || !row.isEmpty {
            row.append(field)
            rows.append(row)
        }
        return .success(rows)
    }
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        let trimmed = drop { $0 == " " || $0 == "\t" }
        var end = trimmed.endIndex
        while end > trimmed.startIndex, [" ", "\t"].contains(trimmed[trimmed.index(before: end)]) { end = trimmed.index(before: end) }
        return Substring(trimmed[trimmed.startIndex..<end])
    }
}
