/// One ComfyUI server as the servers file describes it. An entry with `instances: N` becomes N
/// definitions named `NAME/0` … `NAME/N-1`, each with its own port.
public struct ServerDefinition: Sendable, Equatable {
    /// What `--server`, a job's `servers` and every message call it.
    public var name: String
    /// `http(s)://host:port`, tokens already replaced.
    public var url: String
    /// How to start it; nil for a server comfyq only watches.
    public var launch: Launch?
    /// Prompts in flight on it (running or queued there); nil: the run's `--concurrency`.
    public var concurrency: Int?
    /// Not answering `/system_stats` for this long counts as down.
    public var downAfter: Double
    /// Restarts allowed in an hour before comfyq gives up on it.
    public var maxRestarts: Int

    /// How a supervised server is started.
    public struct Launch: Sendable, Equatable {
        /// The program and its arguments (the `command` split into words, no shell).
        public var argv: [String]
        /// The working folder (`~` expanded); nil: comfyq's own.
        public var cwd: String?
        /// Added to comfyq's environment.
        public var environment: [String: String]
        /// How long it may take to answer after it was started.
        public var startTimeout: Double
        /// Leave it running when the run ends.
        public var keepRunning: Bool
        /// `comfyq_extension`: install comfyq's ComfyUI extension into `cwd` (ComfyUI's folder)
        /// before each start, reaching `comfyq serve` at this URL (nil: leave ComfyUI as it is).
        public var extensionServe: String? = nil

        public init(argv: [String], cwd: String? = nil, environment: [String: String] = [:], startTimeout: Double = 120, keepRunning: Bool = false) {
            self.argv = argv
            self.cwd = cwd
            self.environment = environment
            self.startTimeout = startTimeout
            self.keepRunning = keepRunning
        }
    }

    public init(name: String, url: String, launch: Launch? = nil, concurrency: Int? = nil, downAfter: Double = 30, maxRestarts: Int = 5) {
        self.name = name
        self.url = url
        self.launch = launch
        self.concurrency = concurrency
        self.downAfter = downAfter
        self.maxRestarts = maxRestarts
    }

    public var isSupervised: Bool { launch != nil }
}

/// The servers file (`~/.config/comfyq/servers.json5`): JSON5 like job files, every problem
/// reported together with the file and the field, as job files are.
public struct ServersFile: Sendable, Equatable {
    public var servers: [ServerDefinition]

    public init(servers: [ServerDefinition]) { self.servers = servers }

    /// The server called `name`, or nil.
    public func server(named name: String) -> ServerDefinition? { servers.first { $0.name == name } }

    /// Every instance of the entry `name` (`local` → `local/0`, `local/1`, …) or the one called so.
    public func servers(matching name: String) -> [ServerDefinition] {
        if let exact = server(named: name) { return [exact] }
        return servers.filter { $0.name.hasPrefix(name + "/") }
    }

    static let fields = [
        "name", "url", "port", "instances", "command", "cwd", "env", "start_timeout", "keep_running", "concurrency", "down_after",
        "max_restarts", "comfyq_extension",
    ]

    /// What the loader may ask of the machine. Pure callers pass closures; the CLI passes the
    /// real file system.
    public struct Environment: Sendable {
        /// The user's home folder, for `~` in `cwd`.
        public var home: String
        /// Whether a folder exists.
        public var directoryExists: @Sendable (String) -> Bool
        /// The executable a program name resolves to (`PATH` from the server's environment),
        /// or nil when there is none.
        public var locate: @Sendable (_ program: String, _ path: String?, _ cwd: String?) -> String?
        /// comfyq's own `PATH`, used when the entry's `env` does not set one.
        public var path: String?

        public init(
            home: String, path: String?, directoryExists: @escaping @Sendable (String) -> Bool,
            locate: @escaping @Sendable (String, String?, String?) -> String?
        ) {
            self.home = home
            self.path = path
            self.directoryExists = directoryExists
            self.locate = locate
        }
    }

    /// Parses and checks `text`, the servers file at `path`.
    public static func load(text: String, path: String, environment: Environment) throws(JobValidationError) -> ServersFile {
        let document = try JobValidationError.parseJSON5(text, path: path)
        var problems: [JobProblem] = []
        func problem(_ location: String, _ reason: String) { problems.append(JobProblem(file: path, location: location, reason: reason)) }
        guard let root = document.objectValue else {
            throw JobValidationError(problems: [JobProblem(file: path, location: "", reason: "must be an object such as {servers: [...]}")])
        }
        for key in root.keys where key != "servers" { problem(key, "unknown field (fields: servers)") }
        guard let entries = root["servers"]?.arrayValue else {
            problem("servers", "required: a list of servers such as {name: \"gpu0\", url: \"http://127.0.0.1:8188\"}")
            throw JobValidationError(problems: problems)
        }
        var servers: [ServerDefinition] = []
        for (offset, entry) in entries.enumerated() {
            servers += definitions(entry, at: "servers[\(offset)]", environment: environment, problem: problem)
        }
        var seen: Set<String> = []
        for server in servers where !seen.insert(server.name).inserted {
            problem("servers", "duplicate name \"\(server.name)\"")
        }
        guard problems.isEmpty else { throw JobValidationError(problems: problems) }
        return ServersFile(servers: servers)
    }

    /// The definitions one entry gives (several with `instances`), reporting its problems.
    private static func definitions(
        _ entry: JSONValue, at location: String, environment: Environment, problem: (String, String) -> Void
    ) -> [ServerDefinition] {
        guard let object = entry.objectValue else {
            problem(location, "must be an object such as {name: \"gpu0\", url: \"http://127.0.0.1:8188\"}")
            return []
        }
        var failures = 0
        func fail(_ field: String, _ reason: String) {
            failures += 1
            problem("\(location).\(field)", reason)
        }
        for key in object.keys where !fields.contains(key) { fail(key, "unknown field (fields: \(fields.joined(separator: ", ")))") }

        func string(_ key: String) -> String? {
            guard let value = object[key] else { return nil }
            guard let text = value.stringValue else {
                fail(key, "must be a string, not \(value.kindName)")
                return nil
            }
            return text
        }
        func integer(_ key: String, minimum: Int, maximum: Int = .max) -> Int? {
            guard let value = object[key] else { return nil }
            guard let number = value.numberValue, number.isInteger, let int = number.int, int >= minimum, int <= maximum else {
                fail(key, "must be a whole number from \(minimum)\(maximum == .max ? " up" : " to \(maximum)"), not \(value.serialized())")
                return nil
            }
            return int
        }
        func duration(_ key: String, default fallback: Double) -> Double {
            guard let value = object[key] else { return fallback }
            guard let text = value.stringValue, let seconds = Durations.parse(text), seconds > 0 else {
                fail(key, "must be a duration such as \"30s\" or \"2m\", not \(value.serialized())")
                return fallback
            }
            return seconds
        }
        func bool(_ key: String) -> Bool {
            guard let value = object[key] else { return false }
            guard let flag = value.boolValue else {
                fail(key, "must be true or false, not \(value.serialized())")
                return false
            }
            return flag
        }

        let name = string("name") ?? ""
        if object["name"] == nil { fail("name", "required: what --server and messages call this server") }
        if object["name"] != nil && !isValidName(name) {
            fail("name", "must be letters, digits, '.', '_' or '-' (no ':' or '/'), not \(JSONValue.string(name).serialized())")
        }
        let urlTemplate = string("url")
        if object["url"] == nil { fail("url", "required: http://HOST:PORT, with {port} when port or instances is given") }
        let port = integer("port", minimum: 1, maximum: 65535)
        let instances = integer("instances", minimum: 1) ?? 1
        let command = string("command")
        let cwd = string("cwd")
        var env: [(String, String)] = []
        if let value = object["env"] {
            if let table = value.objectValue {
                for (key, entry) in table {
                    guard let text = entry.stringValue else {
                        fail("env.\(key)", "must be a string, not \(entry.kindName)")
                        continue
                    }
                    env.append((key, text))
                }
            } else {
                fail("env", "must be an object of NAME: \"value\"")
            }
        }
        let startTimeout = duration("start_timeout", default: 120)
        let downAfter = duration("down_after", default: 30)
        let keepRunning = bool("keep_running")
        let concurrency = integer("concurrency", minimum: 1)
        let maxRestarts = integer("max_restarts", minimum: 0) ?? 5
        var extensionServe: String?
        switch object["comfyq_extension"] {
        case nil, .bool(false)?: break
        case .bool(true)?: extensionServe = "http://127.0.0.1:8190"
        case .string(let url)? where isServerURL(url): extensionServe = url
        case let other?:
            fail("comfyq_extension", "must be true, false or comfyq serve's URL (such as http://127.0.0.1:8190), not \(other.serialized())")
        }
        if extensionServe != nil && (command == nil || cwd == nil) {
            fail("comfyq_extension", "needs command and cwd (ComfyUI's folder): comfyq installs its extension there before it starts the server")
        }

        let templates = [urlTemplate, command, cwd].compactMap { $0 } + env.map(\.1)
        let usesPort = templates.contains { $0.contains("{port}") }
        if usesPort && object["port"] == nil { fail("port", "required: {port} is used, so give the first port (port: 8188)") }
        if instances > 1 && !(urlTemplate ?? "").contains("{port}") {
            fail("url", "must contain {port} when instances is \(instances): each instance needs its own port")
        }
        if instances > 1 && command == nil { fail("instances", "needs a command: comfyq starts each instance itself") }
        if let port, port + instances - 1 > 65535 { fail("instances", "ports \(port)…\(port + instances - 1) go past 65535") }
        if keepRunning && command == nil { fail("keep_running", "applies only to a server with a command") }
        if object["start_timeout"] != nil && command == nil { fail("start_timeout", "applies only to a server with a command") }
        if let command, words(command)?.isEmpty ?? true {
            fail("command", words(command) == nil ? "has an unclosed quote" : "must name a program")
        }
        guard failures == 0, let urlTemplate else { return [] }

        var result: [ServerDefinition] = []
        for index in 0..<instances {
            let instanceName = instances > 1 ? "\(name)/\(index)" : name
            func render(_ template: String) -> String {
                var text = template.replacingAll("{name}", with: instanceName).replacingAll("{index}", with: String(index))
                if let port { text = text.replacingAll("{port}", with: String(port + index)) }
                return text
            }
            let url = render(urlTemplate)
            guard isServerURL(url) else {
                fail("url", "must be an http:// or https:// URL such as http://127.0.0.1:8188, got \(JSONValue.string(url).serialized())")
                return []
            }
            var launch: ServerDefinition.Launch?
            if let command, let argv = words(render(command)) {
                var environmentTable: [String: String] = [:]
                for (key, value) in env { environmentTable[key] = render(value) }
                let directory = cwd.map { expandHome(render($0), home: environment.home) }
                if index == 0 {
                    if let directory, !environment.directoryExists(directory) { fail("cwd", "no such folder: \(directory)") }
                    let path = environmentTable["PATH"] ?? environment.path
                    if environment.locate(argv[0], path, directory) == nil {
                        fail("command", argv[0].contains("/") ? "no such program: \(argv[0])" : "\(argv[0]) is not on PATH")
                    }
                }
                launch = ServerDefinition.Launch(
                    argv: argv, cwd: directory, environment: environmentTable, startTimeout: startTimeout, keepRunning: keepRunning)
                launch?.extensionServe = extensionServe
            }
            result.append(
                ServerDefinition(
                    name: instanceName, url: url, launch: launch, concurrency: concurrency, downAfter: downAfter, maxRestarts: maxRestarts))
        }
        return failures == 0 ? result : []
    }

    /// Names: letters, digits, `.`, `_`, `-` (instances add `/N`).
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0) }
    }

    /// Whether a job's `servers` entry or a `--server` value names a server rather than giving a URL.
    public static func isName(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, isValidName(String(parts[0])) else { return false }
        return parts.count == 1 || Int(parts[1]) != nil
    }

    static func isServerURL(_ text: String) -> Bool {
        guard text.hasPrefix("http://") || text.hasPrefix("https://") else { return false }
        let rest = text.drop(while: { $0 != "/" }).dropFirst(2)
        return !rest.isEmpty && !rest.hasPrefix("/") && !text.contains("{")
    }

    static func expandHome(_ path: String, home: String) -> String {
        if path == "~" { return home }
        if path.hasPrefix("~/") { return home + path.dropFirst() }
        return path
    }

    /// Splits a command into words as a shell would for plain words, quotes and backslashes (no
    /// variables, globs or redirections: the program is run directly). Nil for an unclosed quote.
    public static func words(_ command: String) -> [String]? {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in command {
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            if let open = quote {
                if character == open {
                    quote = nil
                } else if character == "\\" && open == "\"" {
                    escaped = true
                } else {
                    current.append(character)
                }
                continue
            }
            switch character {
            case "\\":
                escaped = true
                inWord = true
            case "\"", "'":
                quote = character
                inWord = true
            case " ", "\t", "\n":
                if inWord { words.append(current) }
                current = ""
                inWord = false
            default:
                current.append(character)
                inWord = true
            }
        }
        guard quote == nil, !escaped else { return nil }
        if inWord { words.append(current) }
        return words
    }
}

extension String {
    /// Every occurrence of `target` replaced (ComfyCore does without Foundation).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        let pattern = Array(target.utf8)
        let bytes = Array(utf8)
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == pattern[0], index + pattern.count <= bytes.count, Array(bytes[index..<index + pattern.count]) == pattern {
                result += replacement.utf8
                index += pattern.count
            } else {
                result.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: result, as: UTF8.self)
    }
}
