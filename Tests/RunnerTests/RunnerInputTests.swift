import ComfyCore
import Foundation
import InputFiles
import QueueStore
@testable import Runner
import Simulator
import TestSupport
import Testing

/// A folder of input images beside a queue, and img2img jobs over it.
final class InputWorkspace: @unchecked Sendable {
    let workspace: Workspace
    var root: URL { workspace.root }
    var photos: URL { root.appendingPathComponent("photos") }
    static let workflow = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("jobs/workflows/img2img.json").path

    /// Images of different sizes and colours: `name` → (width, height).
    init(images: [String: (Int, Int)]) throws {
        workspace = try Workspace()
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        for (offset, (name, size)) in images.sorted(by: { $0.key < $1.key }).enumerated() { try writeImage(name, size: size, shade: UInt8(40 * offset + 30)) }
    }

    func writeImage(_ name: String, size: (Int, Int), shade: UInt8) throws {
        var rgba = [UInt8](repeating: 255, count: size.0 * size.1 * 4)
        for pixel in 0..<(size.0 * size.1) {
            rgba[pixel * 4] = shade
            rgba[pixel * 4 + 1] = UInt8(pixel % 256)
        }
        try Data(PNGImage(width: size.0, height: size.1, rgba: rgba).encoded()).write(to: photos.appendingPathComponent(name))
    }

    @discardableResult
    func addJob(_ name: String, fields: String) throws -> Int64 {
        let text = #"{name: "\#(name)", workflow: "\#(Self.workflow)", set: {"KSampler.steps": 3}, output: {folder: "\#(workspace.outputs.path)", name: "{job}_{index}_{input}"}, \#(fields)}"#
        let loader = JobLoader(
            readFile: { try String(contentsOfFile: $0, encoding: .utf8) }, fileExists: { FileManager.default.fileExists(atPath: $0) },
            files: LocalFiles.files)
        let spec = try loader.load(text: text, path: root.appendingPathComponent("\(name).json").path)
        return try Queue(path: workspace.queuePath).add(spec, items: spec.expand(random: { 0 }), now: Date().timeIntervalSince1970)
    }

    func sidecars() throws -> [JSONValue] {
        try workspace.files("json").map { try JSONValue(parsing: String(contentsOf: workspace.outputs.appendingPathComponent($0), encoding: .utf8)) }
    }
}

/// What a simulated ComfyUI saved in a PNG: its size and the prompt it made it from.
func pngFacts(_ path: String) throws -> (width: Int, height: Int, prompt: JSONValue) {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let size = try #require(PNGImage.size(of: bytes))
    let marker = Array("tEXtprompt\0".utf8)
    let start = try #require(bytes.indices.first { bytes[$0...].starts(with: marker) }) + marker.count
    let length = Int(bytes[start - marker.count - 4]) << 24 | Int(bytes[start - marker.count - 3]) << 16 | Int(bytes[start - marker.count - 2]) << 8
        | Int(bytes[start - marker.count - 1])
    let text = String(decoding: bytes[start..<(start + length - "prompt\0".count)], as: UTF8.self)
    return (size.width, size.height, try JSONValue(parsing: text))
}

@Suite(.serialized) struct RunnerInputTests {
    @Test func aFolderOnTwoServersIsUploadedOncePerServerAndEveryOutputTracesToItsInput() async throws {
        let inputs = try InputWorkspace(images: ["a.png": (64, 48), "b.png": (48, 80), "c.png": (96, 32)])
        try inputs.addJob("folder", fields: #"matrix: {"Load Image.image": {files: "photos/*.png"}, "KSampler.denoise": [0.4, 0.7]}"#)
        let first = try simulator()
        let second = try simulator()
        defer {
            first.stop()
            second.stop()
        }
        let runner = try Runner(queuePath: inputs.workspace.queuePath, options: fastOptions([first, second]))
        let summary = await runner.run()
        let unfinished = try Queue(path: inputs.workspace.queuePath).items().filter { $0.state != .done }.map { "\($0.index) \($0.state): \($0.error ?? "")" }
        #expect(summary.done == 6 && summary.failed == 0, "\(summary); not done: \(unfinished)")
        let completed = await [stats(first), stats(second)].map { $0["completed"]?.numberValue?.int ?? 0 }
        #expect(completed.reduce(0, +) == 6, "every item ran exactly once")

        let sidecars = try inputs.sidecars()
        #expect(sidecars.count == 6)
        var imagesByServer: [String: Set<String>] = [:]
        for sidecar in sidecars {
            let input = try #require(sidecar["inputs"]?.arrayValue?.first)
            let path = try #require(input["path"]?.stringValue)
            #expect(input["sha256"]?.stringValue == (try FileHash.sha256(of: path)))
            let uploadedAs = try #require(input["uploaded_as"]?.stringValue)
            // Names on the server: only the comfyq subfolder, then the content hash and the name.
            #expect(uploadedAs.hasPrefix("comfyq/") && uploadedAs.split(separator: "/").count == 2)
            #expect(uploadedAs.contains(String(input["sha256"]!.stringValue!.prefix(16))))
            imagesByServer[sidecar["server"]?.stringValue ?? "?", default: []].insert(path)
            // The output was made from that upload, at that image's size.
            let output = try #require(inputs.workspace.files("png").first { sidecar["source"]?["filename"] != nil && $0.hasPrefix("folder_\(sidecar["item"]!.numberValue!.int!)_") })
            let facts = try pngFacts(inputs.workspace.outputs.appendingPathComponent(output).path)
            #expect(facts.prompt["10"]?["inputs"]?["image"]?.stringValue == uploadedAs)
            let source = try PNGImage(decoding: [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
            #expect(facts.width == source.width && facts.height == source.height)
            #expect(output.hasSuffix("_\(URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent).png"), "{input} is the stem")
        }
        // Each image went once to each server that ran one of its items, no more.
        let queue = try Queue(path: inputs.workspace.queuePath)
        for simulator in [first, second] {
            let expected = imagesByServer[simulator.url]?.count ?? 0
            #expect(simulator.uploads == expected, "\(simulator.url): \(simulator.uploads) uploads for \(expected) images")
            #expect(try queue.uploadCount(server: simulator.url) == expected)
            // Nothing outside the comfyq subfolder of its input folder.
            let names = FileManager.default.enumerator(atPath: simulator.options.inputDirectory)?.allObjects as? [String] ?? []
            #expect(names.allSatisfy { $0 == "comfyq" || ($0.hasPrefix("comfyq/") && $0.split(separator: "/").count == 2) }, "\(names)")
        }
    }

    @Test func aSecondRunReusesWhatIsUploadedAndALostInputFolderIsUploadedAgain() async throws {
        let inputs = try InputWorkspace(images: ["a.png": (32, 32)])
        let server = try simulator()
        defer { server.stop() }
        try inputs.addJob("one", fields: #"set: {"Load Image.image": {file: "photos/a.png"}}"#)
        let first = try await Runner(queuePath: inputs.workspace.queuePath, options: fastOptions([server])).run()
        #expect(first.done == 1 && server.uploads == 1)

        // Another job, another run, the same file: the queue knows the server has it.
        try inputs.addJob("two", fields: #"set: {"Load Image.image": {file: "photos/a.png"}, "KSampler.denoise": 0.5}"#)
        let second = try await Runner(queuePath: inputs.workspace.queuePath, options: fastOptions([server])).run()
        #expect(second.done == 1 && second.failed == 0)
        #expect(server.uploads == 1, "not uploaded again")

        // The server comes back with an empty input folder: its refusal names our file, so the
        // item goes back (no retry spent), the file is uploaded again, and the item runs.
        await control(server, "/sim/restart", #"{"lose_inputs": true}"#)
        try inputs.addJob("three", fields: #"set: {"Load Image.image": {file: "photos/a.png"}, "KSampler.denoise": 0.6}"#)
        let third = try await Runner(queuePath: inputs.workspace.queuePath, options: fastOptions([server])).run()
        #expect(third.done == 1 && third.failed == 0)
        #expect(third.retried == 1)
        #expect(server.uploads == 2)
    }

    @Test func aFileChangedSinceAddFailsItsItemNamingIt() async throws {
        let inputs = try InputWorkspace(images: ["a.png": (32, 32), "b.png": (32, 32)])
        let job = try inputs.addJob("changed", fields: #"zip: {"Load Image.image": {files: "photos/*.png"}}"#)
        try inputs.writeImage("b.png", size: (40, 40), shade: 7)
        let server = try simulator()
        defer { server.stop() }
        let summary = try await Runner(queuePath: inputs.workspace.queuePath, options: fastOptions([server])).run()
        #expect(summary.done == 1 && summary.failed == 1)
        let failed = try Queue(path: inputs.workspace.queuePath).items(jobID: job).first { $0.state == .failed }
        let error = try #require(failed?.error)
        #expect(error.contains(inputs.photos.appendingPathComponent("b.png").path) && error.contains("changed since the job was added"), "\(error)")
        #expect(server.uploads == 1)
    }

    @Test func aFileLargerThanTheServerTakesFailsWithBothSizes() async throws {
        let inputs = try InputWorkspace(images: ["big.png": (200, 200)])
        let job = try inputs.addJob("big", fields: #"set: {"Load Image.image": {file: "photos/big.png"}}"#)
        let server = try simulator { $0.maxUploadSize = 1000 }
        defer { server.stop() }
        let summary = try await Runner(queuePath: inputs.workspace.queuePath, options: fastOptions([server])).run()
        #expect(summary.failed == 1)
        let error = try #require(try Queue(path: inputs.workspace.queuePath).items(jobID: job).first?.error)
        #expect(error.contains("big.png") && error.contains("max_upload_size (1000 bytes)"), "\(error)")
        #expect(server.uploads == 0)
    }

    @Test func aMaskBecomesTheImagesAlphaOnTheServer() async throws {
        let inputs = try InputWorkspace(images: ["a.png": (8, 4)])
        // A black-and-white mask without alpha (white: paint here) on the left half.
        let masks = inputs.root.appendingPathComponent("masks")
        try FileManager.default.createDirectory(at: masks, withIntermediateDirectories: true)
        var rows: [UInt8] = []
        for _ in 0..<4 {
            rows.append(0)  // filter: none
            for x in 0..<8 { rows += x < 4 ? [255, 255, 255] : [0, 0, 0] }
        }
        try Data(PNG.encode(width: 8, height: 4, rgb: rows)).write(to: masks.appendingPathComponent("a.png"))
        try inputs.addJob("mask", fields: #"set: {"Load Image.image": {file: "photos/a.png", mask: "masks/{stem}.png"}}"#)
        let server = try simulator()
        defer { server.stop() }
        let summary = try await Runner(queuePath: inputs.workspace.queuePath, options: fastOptions([server])).run()
        #expect(summary.done == 1, "\(summary)")
        let uploadedAs = try #require(try inputs.sidecars().first?["inputs"]?.arrayValue?.first?["uploaded_as"]?.stringValue)
        let composite = try PNGImage(decoding: [UInt8](Data(contentsOf: URL(fileURLWithPath: server.options.inputDirectory + "/" + uploadedAs))))
        // Painted (white) → transparent, so LoadImage's mask (1 − alpha) is 1 there; the colours stay the image's.
        let alpha: [UInt8] = (0..<8).map { composite.rgba[$0 * 4 + 3] }
        let expected: [UInt8] = [0, 0, 0, 0, 255, 255, 255, 255]
        #expect(alpha == expected)
        #expect(composite.rgba[0] == 30)
    }
}
