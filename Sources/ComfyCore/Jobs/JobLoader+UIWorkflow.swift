/// Node definitions for converting UI-format workflows, with where they came from for messages
/// (`gpu0 (ComfyUI 0.3.64)`, `the cached /object_info of gpu0`, `object_info.json`).
public struct NodeDefinitionsSource: Sendable {
    public var definitions: NodeDefinitions
    public var origin: String
    /// Read from a cache rather than from the server just now: models installed since are not
    /// in its lists.
    public var fromCache: Bool
    /// The server did not answer: these are what it had when they were cached, hours or days
    /// ago perhaps. They may warn about an item but never refuse it (the run checks against the
    /// live server).
    public var serverDidNotAnswer: Bool

    public init(_ definitions: NodeDefinitions, origin: String, fromCache: Bool = false, serverDidNotAnswer: Bool = false) {
        self.definitions = definitions
        self.origin = origin
        self.fromCache = fromCache
        self.serverDidNotAnswer = serverDidNotAnswer
    }
}

extension NodeDefinitionsSource {
    /// A saved `/object_info` (`curl …/object_info > FILE`), read from `text`; the error is one line
    /// naming `path` (and the line and column when it is not JSON).
    public init(savedObjectInfo text: String, path: String) throws(ObjectInfoFileError) {
        let json: JSONValue
        do { json = try JSONValue(parsing: text) } catch {
            let (line, column) = error.location(in: text)
            throw ObjectInfoFileError("\(path): line \(line), column \(column): \(error)")
        }
        do { self.init(try NodeDefinitions(objectInfo: json), origin: path) } catch { throw ObjectInfoFileError("\(path): \(error)") }
    }
}

/// What is wrong with a saved `/object_info`, in one line naming the file.
public struct ObjectInfoFileError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The UI-format file a job's graph was converted from: recorded with the job and in sidecars.
public struct UIWorkflowRecord: Sendable, Equatable {
    public var path: String
    /// SHA-1 of the file's bytes when the job was added (nil when the loader was given no digest).
    public var sha1: String?
    /// Whose node definitions converted it.
    public var definitions: String
    /// What the conversion passed over as ComfyUI's page does (saved values beyond a node's
    /// widgets, widgets with no saved value), one line each; not stored.
    public var notes: [String]

    public init(path: String, sha1: String?, definitions: String, notes: [String] = []) {
        self.path = path
        self.sha1 = sha1
        self.definitions = definitions
        self.notes = notes
    }

    public var json: JSONValue {
        ["path": .string(path), "sha1": sha1.map { .string($0) } ?? .null, "definitions": .string(definitions)]
    }

    public init?(json: JSONValue) {
        guard let path = json["path"]?.stringValue else { return nil }
        self.init(path: path, sha1: json["sha1"]?.stringValue, definitions: json["definitions"]?.stringValue ?? "")
    }
}

extension JobLoader {
    /// `object_info: FILE` in a job: a saved `/object_info` to convert its UI-format workflow with.
    func objectInfo(_ value: JSONValue, directory: String, problem: (String, String) -> Void) -> NodeDefinitionsSource? {
        guard let relative = value.stringValue, !relative.isEmpty else {
            problem("object_info", "must be the path of a saved /object_info (JSON)")
            return nil
        }
        let path = Self.resolve(relative, against: directory)
        do {
            return try NodeDefinitionsSource(savedObjectInfo: try readFile(path), path: path)
        } catch let error as ObjectInfoFileError {
            problem("object_info", error.description)
        } catch {
            problem("object_info", "cannot read \(path): \(error)")
        }
        return nil
    }

    /// A UI-format workflow converted with `definitions`; each problem is one line naming the file.
    func converted(
        _ json: JSONValue, path: String, text: String, definitions: NodeDefinitionsSource?, problem: (String, String) -> Void
    ) -> (Workflow, UIWorkflowRecord)? {
        guard let definitions else {
            problem(
                "workflow",
                "\(path) is a UI-format workflow (as ComfyUI's Save writes it); converting it needs a server's node definitions: "
                    + "give --server NAME|URL, add object_info: FILE to the job, or export it with Export (API)")
            return nil
        }
        do {
            let result = try UIConversion(definitions: definitions.definitions, date: now, choose: choose).convert(json: json)
            return (
                result.workflow,
                UIWorkflowRecord(path: path, sha1: digest?(Array(text.utf8)), definitions: definitions.origin, notes: result.notes.map { "\(path): \($0)" })
            )
        } catch {
            for line in error.problems { problem("workflow", "\(path): \(line) (node definitions: \(definitions.origin))") }
            return nil
        }
    }
}
