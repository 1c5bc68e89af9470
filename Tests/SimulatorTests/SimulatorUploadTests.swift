import ComfyClient
import ComfyCore
import Foundation
import InputFiles
import Simulator
import TestSupport
import Testing
import Workloads
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The simulator's uploads and `LoadImage` against ComfyUI's rules (server.py `image_upload`,
/// nodes.py `LoadImage.VALIDATE_INPUTS`).
@Suite struct SimulatorUploadTests {
    static func image(_ shade: UInt8, width: Int = 4, height: Int = 2) -> [UInt8] {
        PNGImage(width: width, height: height, rgba: [UInt8](repeating: shade, count: width * height * 4)).encoded()
    }

    /// A raw multipart POST, for what ComfyAPI never sends (a subfolder leaving the folder).
    static func rawUpload(_ fixture: SimulatorFixture, fields: [String: String], filename: String, bytes: [UInt8]) async throws -> (Int, String) {
        let boundary = "b-\(UUID().uuidString)"
        var body = Data()
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
            body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
        }
        body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"\(filename)\"\r\n\r\n".utf8))
        body.append(contentsOf: bytes)
        body.append(Data("\r\n--\(boundary)--\r\n".utf8))
        var request = URLRequest(url: URL(string: fixture.simulator.url + "/upload/image")!)
        request.httpMethod = "POST"
        request.setValue("multipart/form-data; boundary=\(boundary)", forHTTPHeaderField: "Content-Type")
        request.httpBody = body
        let (data, response) = try await URLSession(configuration: .ephemeral).data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    @Test func sameContentIsOneFileOtherContentIsRenamed() async throws {
        let fixture = try SimulatorFixture()
        let first = try await fixture.api.upload(Self.image(10), name: "cat.png", subfolder: "comfyq")
        #expect(first == UploadedFile(name: "cat.png", subfolder: "comfyq", type: "input"))
        // The same bytes under the same name: the same answer, nothing written.
        #expect(try await fixture.api.upload(Self.image(10), name: "cat.png", subfolder: "comfyq") == first)
        // Other bytes under that name: renamed, as ComfyUI does.
        #expect(try await fixture.api.upload(Self.image(20), name: "cat.png", subfolder: "comfyq").name == "cat (1).png")
        #expect(try await fixture.api.upload(Self.image(30), name: "cat.png", subfolder: "comfyq").name == "cat (2).png")
        #expect(fixture.simulator.uploads == 3)
        let stored = try Data(contentsOf: URL(fileURLWithPath: fixture.simulator.options.inputDirectory + "/comfyq/cat (1).png"))
        #expect([UInt8](stored) == Self.image(20))
    }

    @Test func overwriteAndOtherFolders() async throws {
        let fixture = try SimulatorFixture()
        _ = try await fixture.api.upload(Self.image(10), name: "a.png", subfolder: "")
        let (status, body) = try await Self.rawUpload(fixture, fields: ["overwrite": "true"], filename: "a.png", bytes: Self.image(99))
        #expect(status == 200 && body.contains(#""name":"a.png""#))
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture.simulator.options.inputDirectory + "/a.png"))) == Self.image(99))
        let temp = try await fixture.api.upload(Self.image(1), name: "t.png", subfolder: "x", type: "temp")
        #expect(temp.type == "temp" && FileManager.default.fileExists(atPath: fixture.output + "/temp/x/t.png"))
    }

    @Test(arguments: [
        (["subfolder": "../outside"], "a.png"), (["subfolder": "/etc"], "a.png"), ([:], "../a.png"), (["type": "models"], "a.png"),
    ])
    func pathsLeavingTheFolderAreRefused(_ fields: [String: String], _ filename: String) async throws {
        let fixture = try SimulatorFixture()
        let (status, _) = try await Self.rawUpload(fixture, fields: fields, filename: filename, bytes: Self.image(1))
        #expect(status == 400)
        #expect(fixture.simulator.uploads == 0)
    }

    @Test func tooLargeIs413AndFeaturesSayTheLimit() async throws {
        let fixture = try SimulatorFixture { options in
            options.instant()
            options.maxUploadSize = 512
        }
        #expect(try await fixture.api.maxUploadSize() == 512)
        await #expect(throws: ComfyAPIError.self) { try await fixture.api.upload([UInt8](repeating: 7, count: 2000), name: "big.png", subfolder: "comfyq") }
    }

    @Test func aMaskUploadStoresTheImageWithTheMasksAlpha() async throws {
        let fixture = try SimulatorFixture()
        let original = try await fixture.api.upload(Self.image(200, width: 2, height: 1), name: "photo.png", subfolder: "comfyq")
        let mask = PNGImage(width: 2, height: 1, rgba: [0, 0, 0, 0, 0, 0, 0, 255]).encoded()
        let masked = try await fixture.api.upload(mask, name: "photo-mask.png", subfolder: "comfyq", original: original)
        #expect(masked.name == "photo-mask.png")
        let stored = try PNGImage(decoding: [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture.simulator.options.inputDirectory + "/comfyq/photo-mask.png"))))
        #expect(stored.rgba == [200, 200, 200, 0, 200, 200, 200, 255])
    }

    @Test func loadImageNeedsItsFileAndObjectInfoListsTheInputFolder() async throws {
        let fixture = try SimulatorFixture()
        let graph = Workloads.img2img(image: "comfyq/missing.png")
        do {
            _ = try await fixture.api.submit(graph, promptID: "p1", clientID: "c")
            Issue.record("a prompt naming a missing file was accepted")
        } catch {
            guard case .rejected(let rejection) = error.kind else { throw error }
            let text = "\(rejection)"
            #expect(text.contains("Invalid image file: comfyq/missing.png"), "\(text)")
            let node = try #require(rejection.nodeErrors.first)
            #expect(node.nodeID == "10" && node.type == "custom_validation_failed" && node.input == "image")
            #expect(node.details == "image - Invalid image file: comfyq/missing.png")
        }
        let uploaded = try await fixture.api.upload(Self.image(5, width: 24, height: 16), name: "here.png", subfolder: "comfyq")
        let info = try await fixture.api.objectInfo()
        #expect(info["LoadImage"]?["input"]?["required"]?["image"] == [["comfyq/here.png"], ["image_upload": true]])
        #expect(UploadInputs(objectInfo: info).kind(classType: "LoadImage", input: "image") == .image)
        let accepted = try await fixture.api.submit(Workloads.img2img(image: uploaded.inputValue), promptID: "p2", clientID: "c")
        #expect(accepted.promptID == "p2")
    }
}
