import ComfyCore
import Foundation
import HTTPServer
import InputFiles

/// `POST /upload/image` and `/upload/mask` with ComfyUI's rules (server.py `image_upload`):
/// multipart fields `image` (the file), `type` (input, default; temp; output), `subfolder`,
/// `overwrite`; a path leaving the folder is refused (400); a name already taken by the same
/// content is answered without writing, by other content gets ` (1)`, ` (2)`… before the
/// extension; the answer is `{"name", "subfolder", "type"}`. `/upload/mask` also takes
/// `original_ref` (`{"filename", "subfolder", "type"}`) and saves that image with the uploaded
/// mask's alpha channel instead of the mask itself.
extension Simulator {
    func upload(_ request: HTTPRequest, mask: Bool) -> HTTPResponse {
        state.withLock { $0.uploadRequests += 1 }
        if Int64(request.body.count) > options.maxUploadSize { return HTTPResponse(status: 413, contentType: "text/plain") }
        guard let boundary = Multipart.boundary(request.headers["content-type"] ?? ""),
            let parts = Multipart.parse(request.body, boundary: boundary)
        else { return HTTPResponse(status: 400, contentType: "text/plain") }
        func field(_ name: String) -> String? { parts.first { $0.name == name && $0.filename == nil }.map { String(decoding: $0.body, as: UTF8.self) } }
        guard let image = parts.first(where: { $0.name == "image" }), let filename = image.filename, !filename.isEmpty else {
            return HTTPResponse(status: 400, contentType: "text/plain")
        }
        let type = field("type") ?? "input"
        let root: URL
        switch type {
        case "input": root = URL(fileURLWithPath: options.inputDirectory)
        case "temp": root = URL(fileURLWithPath: options.outputDirectory).appendingPathComponent("temp")
        case "output": root = URL(fileURLWithPath: options.outputDirectory)
        default: return HTTPResponse(status: 400, contentType: "text/plain")
        }
        let subfolder = field("subfolder") ?? ""
        // As os.path.join: an absolute subfolder replaces the folder (and then fails the check below).
        let folder = (subfolder.hasPrefix("/") ? URL(fileURLWithPath: subfolder) : root.appendingPathComponent(subfolder)).standardizedFileURL
        var target = folder.appendingPathComponent(filename).standardizedFileURL
        let rootPath = root.standardizedFileURL.path
        guard target.path.hasPrefix(rootPath + "/") else { return HTTPResponse(status: 400, contentType: "text/plain") }
        do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
            return HTTPResponse(status: 500, contentType: "text/plain")
        }
        var contents = image.body
        if mask {
            guard let reference = field("original_ref").flatMap({ try? JSONValue(parsing: $0) }),
                let original = reference["filename"]?.stringValue, !original.isEmpty, !original.hasPrefix("/"), !original.contains("..")
            else { return HTTPResponse(status: 400, contentType: "text/plain") }
            let originalType = reference["type"]?.stringValue ?? "output"
            var source = originalType == "input" ? URL(fileURLWithPath: options.inputDirectory) : URL(fileURLWithPath: options.outputDirectory)
            if originalType == "temp" { source.appendPathComponent("temp") }
            if let sub = reference["subfolder"]?.stringValue, !sub.isEmpty {
                guard !sub.contains("..") else { return HTTPResponse(status: 403, contentType: "text/plain") }
                source.appendPathComponent(sub)
            }
            source.appendPathComponent(original)
            // As ComfyUI: the original's colours with the mask's alpha, saved as PNG.
            if let data = FileManager.default.contents(atPath: source.path) {
                do {
                    var composite = try PNGImage(decoding: [UInt8](data))
                    let alpha = try PNGImage(decoding: image.body)
                    guard alpha.width == composite.width, alpha.height == composite.height else {
                        return HTTPResponse(status: 400, contentType: "text/plain", body: Array("mask size differs from the image".utf8))
                    }
                    for pixel in 0..<(composite.width * composite.height) { composite.rgba[pixel * 4 + 3] = alpha.rgba[pixel * 4 + 3] }
                    contents = composite.encoded()
                } catch {
                    return HTTPResponse(status: 500, contentType: "text/plain", body: Array("\(error)".utf8))
                }
            }
        }
        var name = filename
        let overwrite = field("overwrite").map { $0 == "true" || $0 == "1" } ?? false
        var duplicate = false
        if !overwrite {
            let stem = (filename as NSString).deletingPathExtension
            let ext = (filename as NSString).pathExtension
            var counter = 1
            while FileManager.default.fileExists(atPath: target.path) {
                // The same content (as sent, before any mask is applied, like ComfyUI) is not saved twice.
                if let existing = FileManager.default.contents(atPath: target.path), [UInt8](existing) == image.body {
                    duplicate = true
                    break
                }
                name = "\(stem) (\(counter))" + (ext.isEmpty ? "" : ".\(ext)")
                target = folder.appendingPathComponent(name)
                counter += 1
            }
        }
        if !duplicate {
            do { try Data(contents).write(to: target) } catch { return HTTPResponse(status: 500, contentType: "text/plain") }
            state.withLock { $0.uploads += 1 }
        }
        return json(["name": .string(name), "subfolder": .string(subfolder), "type": .string(type)])
    }

    /// Files in the input folder, as `LoadImage`'s combo lists them (`subfolder/name`).
    func inputFiles() -> [String] {
        let root = options.inputDirectory
        guard let names = FileManager.default.enumerator(atPath: root)?.allObjects as? [String] else { return [] }
        return names.filter { name in
            var directory: ObjCBool = false
            return FileManager.default.fileExists(atPath: root + "/" + name, isDirectory: &directory) && !directory.boolValue
        }.sorted()
    }
}

/// `multipart/form-data` bodies, as far as uploads need.
enum Multipart {
    struct Part {
        var name: String
        var filename: String?
        var body: [UInt8]
    }

    static func boundary(_ contentType: String) -> String? {
        guard contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].lowercased() == "boundary" { return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        return nil
    }

    static func parse(_ body: [UInt8], boundary: String) -> [Part]? {
        let delimiter = Array("--\(boundary)".utf8)
        var parts: [Part] = []
        var positions: [Int] = []
        var index = 0
        while let found = find(delimiter, in: body, from: index) {
            positions.append(found)
            index = found + delimiter.count
        }
        guard positions.count >= 2 else { return nil }
        for (start, end) in zip(positions, positions.dropFirst()) {
            var from = start + delimiter.count
            if from + 2 <= body.count, body[from] == 0x0D, body[from + 1] == 0x0A { from += 2 }
            guard let headEnd = find([0x0D, 0x0A, 0x0D, 0x0A], in: body, from: from), headEnd < end else { return nil }
            let head = String(decoding: body[from..<headEnd], as: UTF8.self)
            var contentEnd = end
            if contentEnd >= 2, body[contentEnd - 2] == 0x0D, body[contentEnd - 1] == 0x0A { contentEnd -= 2 }
            var name = ""
            var filename: String?
            for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
                for item in line.split(separator: ";").dropFirst() {
                    let pair = item.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                    guard pair.count == 2 else { continue }
                    let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                    if pair[0] == "name" { name = value }
                    if pair[0] == "filename" { filename = value }
                }
            }
            parts.append(Part(name: name, filename: filename, body: Array(body[(headEnd + 4)..<max(headEnd + 4, contentEnd)])))
        }
        return parts
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
        var index = start
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first {
                var match = true
                for offset in 1..<needle.count where haystack[index + offset] != needle[offset] {
                    match = false
                    break
                }
                if match { return index }
            }
            index += 1
        }
        return nil
    }
}
