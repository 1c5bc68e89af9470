import ComfyCore
import Foundation

/// The body of a hook's `comfyq.http_post` when it is a table: a file sent as it is
/// (`{file = PATH}`, as ntfy takes an attachment), or a `multipart/form-data` form with fields
/// and files (`{fields = {name = text}, files = {{name = "file", path = PATH}}}`, as Discord
/// and most upload endpoints take one).
struct HTTPBody: Equatable {
    var bytes: [UInt8]
    var contentType: String

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Files larger than this are refused (chat services cap uploads well below it).
    static let maximumFile = 50 << 20

    init(table: JSONObject, boundary: String = "comfyq-" + UUID().uuidString) throws(Failure) {
        guard !table.isEmpty else { throw Failure(description: "the body is an empty table: give a string, {file = PATH} or {fields = …, files = …}") }
        if let path = table["file"] {
            guard table.count == 1 || (table.count == 2 && table["type"] != nil) else { throw Failure(description: "give either {file = PATH} or {fields = …, files = …}") }
            guard let path = path.stringValue else { throw Failure(description: "file must be a path") }
            bytes = try Self.read(path)
            contentType = table["type"]?.stringValue ?? InputFile.mediaType(path)
            return
        }
        for key in table.keys where key != "fields" && key != "files" {
            throw Failure(description: "unknown body key '\(key)' (a form has fields and files)")
        }
        var out: [UInt8] = []
        func line(_ text: String) { out += Array((text + "\r\n").utf8) }
        if let fields = table["fields"] {
            guard let entries = fields.objectValue else { throw Failure(description: "fields must be a table of name = text") }
            for (name, value) in entries {
                line("--\(boundary)")
                line("Content-Disposition: form-data; name=\"\(Self.quoted(name))\"")
                line("")
                out += Array((value.stringValue ?? value.serialized()).utf8)
                line("")
            }
        }
        if let files = table["files"] {
            guard let list = files.arrayValue else { throw Failure(description: "files must be a list of {name = …, path = …}") }
            for (number, entry) in list.enumerated() {
                guard let file = entry.objectValue, let path = file["path"]?.stringValue else {
                    throw Failure(description: "files[\(number + 1)] needs a path")
                }
                let name = file["name"]?.stringValue ?? "file\(number)"
                let filename = file["filename"]?.stringValue ?? (path as NSString).lastPathComponent
                let data = try Self.read(path)
                line("--\(boundary)")
                line("Content-Disposition: form-data; name=\"\(Self.quoted(name))\"; filename=\"\(Self.quoted(filename))\"")
                line("Content-Type: \(file["type"]?.stringValue ?? InputFile.mediaType(path))")
                line("")
                out += data
                line("")
            }
        }
        line("--\(boundary)--")
        bytes = out
        contentType = "multipart/form-data; boundary=\(boundary)"
    }

    static func read(_ path: String) throws(Failure) -> [UInt8] {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let size = (attributes?[.size] as? NSNumber)?.intValue, let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "\(path): cannot read it")
        }
        guard size <= maximumFile else { throw Failure(description: "\(path): \(size) bytes, more than the \(maximumFile >> 20) MB a hook may send") }
        return [UInt8](data)
    }

    static func quoted(_ text: String) -> String {
        text.replacingOccurrences(of: "\"", with: "%22").replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\n", with: "")
    }
}
