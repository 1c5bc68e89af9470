import ComfyClient
import ComfyCore
import Foundation
import InputFiles
import WebSocket

/// Why an output could not be saved: the path and the reason, in one line.
struct OutputError: Error, CustomStringConvertible {
    var message: String
    /// The disk (or the quota) is full: the run pauses instead of failing the item.
    var outOfSpace = false
    /// The server stopped answering during the download: the outputs wait for it to come back.
    var serverGone = false
    var description: String { message }
}

/// Downloads a finished prompt's outputs under the job's naming template, with a sidecar each.
enum OutputWriter {
    struct Saved {
        var path: String
        var size: Int64
        /// Its thumbnail (`.thumbs/NAME.png`), when one could be made.
        var thumbnail: String?
    }

    static func save(_ files: [OutputFile], for flight: InFlight, api: ComfyAPI, overwrite: Bool, server: String) async throws -> [Saved] {
        let folder = URL(fileURLWithPath: flight.outputFolder).standardizedFileURL
        var saved: [Saved] = []
        for (offset, file) in files.enumerated() {
            let values = templateValues(flight, number: offset + 1)
            var relative = OutputTemplate.render(flight.template, values: values)
            // Whatever the server calls the file, only its extension is kept.
            let ext = (file.filename as NSString).pathExtension
            let cleanExt = OutputTemplate.sanitize(ext.isEmpty ? "png" : ext)
            if files.count > 1 && !flight.template.contains("{n}") { relative += "_\(offset + 1)" }
            let target = folder.appendingPathComponent(relative + "." + cleanExt).standardizedFileURL
            guard target.path.hasPrefix(folder.path + "/") else {
                throw OutputError(message: "\(target.path): outside the output folder \(folder.path)")
            }
            let directory = target.deletingLastPathComponent()
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            } catch {
                throw OutputError(
                    message: "\(directory.path): cannot create the folder (\(error.localizedDescription))", outOfSpace: DiskSpace.isOutOfSpace(error))
            }
            saved.append(try await store(file, at: target, for: flight, api: api, overwrite: overwrite, server: server))
        }
        return saved
    }

    /// Saves one output at `target`, or beside it as `name-1.png`, `name-2.png`, … when the name
    /// is taken. Idempotent: the sidecar is written first and names the prompt, so collecting the
    /// same prompt again (after a crash between saving and recording) finds and reuses its files.
    static func store(
        _ file: OutputFile, at target: URL, for flight: InFlight, api: ComfyAPI, overwrite: Bool, server: String
    ) async throws -> Saved {
        let manager = FileManager.default
        let base = target.deletingPathExtension().lastPathComponent
        let ext = target.pathExtension
        var candidate = target
        var counter = 0
        while true {
            let sidecar = candidate.deletingPathExtension().appendingPathExtension("json")
            let ours = Self.sidecar(sidecar, belongsTo: flight.promptID, file: file)
            let free = !manager.fileExists(atPath: candidate.path) && !manager.fileExists(atPath: sidecar.path)
            if ours || free || (overwrite && counter == 0) {
                if ours, let size = (try? manager.attributesOfItem(atPath: candidate.path))?[.size] as? NSNumber {
                    let thumbnail = Thumbnail.path(for: candidate.path)  // saved by an earlier attempt
                    return Saved(path: candidate.path, size: size.int64Value, thumbnail: manager.fileExists(atPath: thumbnail) ? thumbnail : nil)
                }
                if overwrite && counter == 0 && !ours {
                    try? manager.removeItem(at: candidate)
                    try? manager.removeItem(at: sidecar)
                }
                try writeSidecar(sidecar, flight: flight, file: file, server: server)
                let partial = candidate.deletingLastPathComponent().appendingPathComponent(".comfyq-partial-\(UUID().uuidString)")
                let size: Int64
                do {
                    size = try await api.download(file, to: partial)
                    // link + unlink: a rename that cannot replace a file someone else just made.
                    try manager.linkItem(at: partial, to: candidate)
                    try? manager.removeItem(at: partial)
                } catch {
                    try? manager.removeItem(at: partial)
                    try? manager.removeItem(at: sidecar)  // do not keep the name reserved
                    if manager.fileExists(atPath: candidate.path) && !ours {
                        counter += 1  // lost a race for the name: take the next one
                        candidate = target.deletingLastPathComponent().appendingPathComponent("\(base)-\(counter).\(ext)")
                        continue
                    }
                    if let api = error as? ComfyAPIError {
                        switch api.kind {
                        case .noSpace: throw OutputError(message: "\(candidate.path): no space left: \(error)", outOfSpace: true)
                        case .connectionRefused, .hostNotFound, .timedOut, .transport:
                            throw OutputError(message: "\(candidate.path): download failed: \(error)", serverGone: true)
                        default: throw OutputError(message: "\(candidate.path): download failed: \(error)")
                        }
                    }
                    if let output = error as? OutputError { throw output }
                    throw OutputError(message: "\(candidate.path): cannot write (\(error.localizedDescription))", outOfSpace: DiskSpace.isOutOfSpace(error))
                }
                return Saved(path: candidate.path, size: size, thumbnail: writeThumbnail(of: candidate.path))
            }
            counter += 1
            candidate = target.deletingLastPathComponent().appendingPathComponent("\(base)-\(counter).\(ext)")
        }
    }

    /// A 256-pixel thumbnail beside a PNG output (`.thumbs/NAME.png`), for `comfyq serve`'s grids.
    /// Optional: an image we cannot decode (not PNG, damaged) is shown full size instead. Returns
    /// the thumbnail's path when there is one.
    static func writeThumbnail(of path: String) -> String? {
        guard InputFile.extensionOf(path) == "png", let data = FileManager.default.contents(atPath: path) else { return nil }
        let target = Thumbnail.path(for: path)
        do {
            let thumbnail = try Thumbnail.make([UInt8](data))
            try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try LocalFiles.write(thumbnail, to: target, atomically: true)
            return target
        } catch {
            return nil  // no thumbnail: the page scales the image itself
        }
    }

    /// Whether a sidecar records this prompt's copy of this file.
    static func sidecar(_ url: URL, belongsTo promptID: String, file: OutputFile) -> Bool {
        guard let text = try? String(contentsOf: url, encoding: .utf8), let json = try? JSONValue(parsing: text) else { return false }
        return json["prompt_id"]?.stringValue == promptID && json["source"]?["filename"]?.stringValue == file.filename
    }

    static func writeSidecar(_ sidecar: URL, flight: InFlight, file: OutputFile, server: String) throws {
        var timings = JSONObject()
        for (phase, seconds) in flight.timings.sorted(by: { $0.key < $1.key }) { timings[phase] = .double((seconds * 1000).rounded() / 1000) }
        let document: JSONValue = [
            "schema": 1, "job": .string(flight.jobName), "item": .int(flight.index), "prompt_id": .string(flight.promptID),
            "server": .string(server), "parameters": flight.parameters, "seed": seed(flight).map { .string($0) } ?? .null,
            "workflow_sha1": .string(SHA1.hex(Array(flight.workflow.json.serialized().utf8))),
            "ui_workflow": flight.uiWorkflow?.json ?? .null,
            "timings": .object(timings), "attempt": .int(flight.attempts), "hook_overrides": flight.hookOverrides,
            "model_key": .string(flight.modelKey.description), "inputs": .array(flight.inputs.map(\.json)),
            "source": ["filename": .string(file.filename), "subfolder": .string(file.subfolder), "type": .string(file.type)],
            "media": file.media?.json ?? .null,
            "saved_at": .string(Timestamps.iso8601UTC(Date())),
        ]
        do {
            try LocalFiles.write(Array(document.serialized(pretty: true).utf8), to: sidecar.path, atomically: true)
        } catch {
            throw OutputError(
                message: "\(sidecar.path): cannot write the sidecar (\(error.localizedDescription))", outOfSpace: DiskSpace.isOutOfSpace(error))
        }
    }

    static func seed(_ flight: InFlight) -> String? {
        for (written, value) in flight.parameters.objectValue ?? JSONObject() where written.hasSuffix(".seed") || written.hasSuffix(".noise_seed") {
            return value.numberValue?.literal ?? value.stringValue
        }
        return nil
    }

    static func templateValues(_ flight: InFlight, number: Int) -> [String: String] {
        var values: [String: String] = [
            "job": flight.jobName, "index": String(flight.index), "n": String(number), "item": "\(flight.jobName)_\(flight.index)",
            "date": Timestamps.localDay(Date()), "seed": seed(flight) ?? "",
        ]
        for (written, value) in flight.parameters.objectValue ?? JSONObject() {
            // An input file stands for its stem (`photos/cat.png` → `cat`).
            let text = InputFile(json: value)?.stem ?? value.stringValue ?? value.serialized()
            values[written] = text
            if let dot = written.lastIndex(of: ".") { values[String(written[written.index(after: dot)...])] = text }
        }
        if let first = InputFile.all(in: flight.parameters).first?.file {
            values["input"] = first.stem
            values["input_dir"] = first.folderName
        }
        return values
    }
}
