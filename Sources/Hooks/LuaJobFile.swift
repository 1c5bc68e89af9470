import ComfyCore
import Foundation
import InputFiles

/// A job file written in Lua: a chunk that returns the same table a JSON job file holds, for
/// sweeps that are easier to generate (loops, string building, a prompts file read line by line).
///
/// It runs in its own state with the standard libraries, a time limit of 10 s and 256 MB, and
/// two globals: `JOB_FILE` (its path) and `JOB_DIR` (its folder, for reading files beside it).
public enum LuaJobFile {
    /// A Lua error with where it happened: the line when Lua names one.
    public struct Failure: Error, Sendable, Equatable {
        /// `line 12`, or empty.
        public var location: String
        public var reason: String
    }

    public static let limits = LuaScript.Limits(time: 10, memory: 256 << 20)

    /// Runs the file and returns the table it returned.
    public static func evaluate(path: String) throws(Failure) -> JSONValue {
        do {
            let lua = try LuaScript(name: path, limits: limits)
            let folder = (path as NSString).deletingLastPathComponent
            try lua.set("JOB_FILE", to: .string(path))
            try lua.set("JOB_DIR", to: .string(folder.isEmpty ? "." : folder))
            try lua.install(library: "comfyq", functions: ["files"]) { _, arguments in
                guard case .success(let values) = arguments, let pattern = values.first?.stringValue, !pattern.isEmpty else {
                    return [.null, "comfyq.files(pattern): give a pattern such as \"photos/*.png\""]
                }
                return [files(pattern, folder: folder)]
            }
            let value = try lua.run(path: path)
            if case .null = value { throw Failure(location: "", reason: "returns nothing: end the file with 'return { workflow = …, … }'") }
            return value
        } catch let error as Failure {
            throw error
        } catch let error as LuaError {
            throw failure(error, path: path)
        } catch {
            throw Failure(location: "", reason: "\(error)")
        }
    }

    /// `comfyq.files(pattern)`: the files matching a pattern (`*`, `?`, `[…]`, `**`), sorted, as
    /// paths relative to the job file when the pattern is (so `{files = list}` and
    /// `{file = path}` take them as they are); an empty list when nothing matches.
    static func files(_ pattern: String, folder: String) -> JSONValue {
        let base = folder.isEmpty ? "." : folder
        guard case .success(let matches) = Glob.expand(pattern, base: base, files: LocalFiles.files) else { return [] }
        let prefix = base + "/"
        return .array(matches.map { .string(pattern.hasPrefix("/") || !$0.hasPrefix(prefix) ? $0 : String($0.dropFirst(prefix.count))) })
    }

    /// `jobs/x.lua:12: attempt to call a nil value` → line 12, the rest.
    static func failure(_ error: LuaError, path: String) -> Failure {
        if let (line, message) = error.location(in: path) { return Failure(location: "line \(line)", reason: message) }
        if error.summary.hasPrefix("cannot open ") { return Failure(location: "", reason: "no such file") }
        return Failure(location: "", reason: error.summary)
    }
}
