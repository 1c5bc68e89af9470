import ComfyCore
import Foundation
@testable import Hooks
import TestSupport
import Testing

/// `comfyq.http_post` bodies given as tables: a file as the body, or a multipart form.
@Suite struct HTTPBodyTests {
    static let folder: URL = {
        let url = TestFolder.root.appendingPathComponent("comfyq-httpbody-\(UUID())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try? Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]).write(to: url.appendingPathComponent("a.png"))
        return url
    }()
    static var png: String { folder.appendingPathComponent("a.png").path }

    @Test func aFileIsTheBody() throws {
        let body = try HTTPBody(table: ["file": .string(Self.png)])
        #expect(body.bytes == [0x89, 0x50, 0x4E, 0x47, 1, 2, 3] && body.contentType == "image/png")
        #expect(try HTTPBody(table: ["file": .string(Self.png), "type": "application/x-thing"]).contentType == "application/x-thing")
    }

    @Test func aFormHasItsFieldsAndFiles() throws {
        let body = try HTTPBody(
            table: ["fields": ["payload_json": "{\"content\":\"hi\"}"], "files": [["name": "files[0]", "path": .string(Self.png)]]], boundary: "B")
        let expected =
            "--B\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{\"content\":\"hi\"}\r\n"
            + "--B\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
        #expect(body.contentType == "multipart/form-data; boundary=B")
        #expect(Array(body.bytes.prefix(expected.utf8.count)) == Array(expected.utf8))
        #expect(Array(body.bytes.suffix(7 + 2 + 7)) == [0x89, 0x50, 0x4E, 0x47, 1, 2, 3] + Array("\r\n--B--\r\n".utf8))
    }

    @Test(arguments: [
        (JSONObject(), "the body is an empty table: give a string, {file = PATH} or {fields = …, files = …}"),
        (["file": "/no/such/file.png"], "/no/such/file.png: cannot read it"),
        (["file": 3], "file must be a path"),
        (["file": "x", "fields": [:]], "give either {file = PATH} or {fields = …, files = …}"),
        (["field": ["a": "b"]], "unknown body key 'field' (a form has fields and files)"),
        (["files": [["name": "f"]]], "files[1] needs a path"),
        (["files": "a.png"], "files must be a list of {name = …, path = …}"),
        (["fields": "x"], "fields must be a table of name = text"),
    ] as [(JSONObject, String)])
    func badBodiesSayWhat(table: JSONObject, message: String) {
        #expect(throws: HTTPBody.Failure.self) { try HTTPBody(table: table) }
        do {
            _ = try HTTPBody(table: table)
        } catch {
            #expect(error.description == message)
        }
    }
}
