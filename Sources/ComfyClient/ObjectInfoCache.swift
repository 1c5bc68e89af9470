import ComfyCore
import Foundation

/// Servers' node definitions (`/object_info`, 300 KB and more), fetched once per server and
/// ComfyUI version and kept in `STATE/comfyq/object_info/SERVER/VERSION.json`. A server that
/// answers with a new version is fetched again; one that does not answer is served from its
/// newest cached file, said so in the origin.
public struct ObjectInfoCache: Sendable {
    public var folder: String

    public init(folder: String) { self.folder = folder }

    public init(environment: [String: String], home: String) {
        self.init(folder: UserFolders.state(environment: environment, home: home) + "/object_info")
    }

    /// The definitions of the server `name` at `api`: the cached ones for its version (unless
    /// `refresh`: models added since a version was cached are not in its lists), else fetched now
    /// (and cached); when it does not answer, the newest cached, else the error.
    public func definitions(name: String, api: ComfyAPI, refresh: Bool = false) async throws(ComfyAPIError) -> NodeDefinitionsSource {
        let version: String
        do {
            version = try await api.systemStats().comfyUIVersion ?? "unknown"
        } catch {
            if let cached = newest(name: name) { return cached }
            throw error
        }
        let file = path(name: name, version: version)
        if !refresh, let cached = read(file, origin: "\(name) (ComfyUI \(version), cached)") { return cached }
        let json = try await api.objectInfo()
        let definitions: NodeDefinitions
        do { definitions = try NodeDefinitions(objectInfo: json) } catch {
            throw ComfyAPIError(server: api.name, request: "GET /object_info", kind: .notComfyUI("\(error)"))
        }
        // A cache that cannot be written only costs the next fetch.
        do {
            try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(json.serialized().utf8).write(to: URL(fileURLWithPath: file), options: .atomic)
        } catch {}
        return NodeDefinitionsSource(definitions, origin: "\(name) (ComfyUI \(version))")
    }

    /// The newest cached definitions of a server, whatever its version.
    public func newest(name: String) -> NodeDefinitionsSource? {
        let directory = folder + "/" + Self.safe(name)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let dated = files.filter { $0.hasSuffix(".json") }.compactMap { file -> (String, Date)? in
            let path = directory + "/" + file
            guard let date = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date else { return nil }
            return (path, date)
        }
        guard let (path, date) = dated.max(by: { $0.1 < $1.1 }) else { return nil }
        let version = String(((path as NSString).lastPathComponent as NSString).deletingPathExtension)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        var source = read(path, origin: "the /object_info of \(name) cached \(formatter.string(from: date)) (ComfyUI \(version); the server did not answer)")
        source?.serverDidNotAnswer = true
        return source
    }

    func path(name: String, version: String) -> String { folder + "/" + Self.safe(name) + "/" + Self.safe(version) + ".json" }

    /// A cached file; a damaged one counts as absent (it is fetched again).
    func read(_ path: String, origin: String) -> NodeDefinitionsSource? {
        guard let data = FileManager.default.contents(atPath: path),
            let json = try? data.withUnsafeBytes({ bytes in try JSONValue(parsing: bytes.bindMemory(to: UInt8.self)) }),
            let definitions = try? NodeDefinitions(objectInfo: json)
        else { return nil }
        return NodeDefinitionsSource(definitions, origin: origin, fromCache: true)
    }

    /// A server name or URL as one folder name.
    static func safe(_ text: String) -> String {
        var name = text
        for prefix in ["http://", "https://"] where name.hasPrefix(prefix) { name.removeFirst(prefix.count) }
        return String(name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" ? $0 : "_" })
    }
}
