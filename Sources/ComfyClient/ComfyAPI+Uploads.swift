import ComfyCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A file in one of the server's folders, as `/upload/image` answers.
public struct UploadedFile: Sendable, Equatable {
    public var name: String
    public var subfolder: String
    public var type: String

    public init(name: String, subfolder: String, type: String = "input") {
        self.name = name
        self.subfolder = subfolder
        self.type = type
    }

    /// What an input of `LoadImage` is set to: `subfolder/name`.
    public var inputValue: String { subfolder.isEmpty ? name : "\(subfolder)/\(name)" }

    /// `original_ref` of `/upload/mask`.
    public var json: JSONValue { ["filename": .string(name), "subfolder": .string(subfolder), "type": .string(type)] }
}

/// Uploads into the server's input folder (input files of jobs).
extension ComfyAPI {
    /// `GET /features`: `max_upload_size` (bytes; nil when the server does not say).
    public func maxUploadSize() async throws(ComfyAPIError) -> Int64? {
        let (status, data) = try await send("GET", "/features")
        if status == 404 { return nil }  // older servers have no /features
        try expectOK(status, data, "GET /features")
        return try parse(data, "GET /features")["max_upload_size"]?.numberValue.map { Int64($0.double) }
    }

    /// Uploads a file into the server's input folder (`POST /upload/image`, or `/upload/mask`
    /// with `original`: the mask's alpha goes into that uploaded image, saved under `name`).
    /// Returns the server's answer; its `name` may differ (`x (1).png`) when a different file
    /// of that name is already there. The same content under the same name is not written twice.
    public func upload(
        _ bytes: [UInt8], name: String, subfolder: String, type: String = "input", original: UploadedFile? = nil
    ) async throws(ComfyAPIError) -> UploadedFile {
        let path = original == nil ? "/upload/image" : "/upload/mask"
        let request = "POST \(path) \(name)"
        let boundary = "comfyq-\(UUID().uuidString)"
        var body = Data()
        func field(_ name: String, _ value: String) {
            body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
        }
        field("type", type)
        field("subfolder", subfolder)
        if let original { field("original_ref", original.json.serialized()) }
        let quotedName = name.replacingOccurrences(of: "\"", with: "_")
        body.append(
            Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"\(quotedName)\"\r\nContent-Type: application/octet-stream\r\n\r\n".utf8))
        body.append(contentsOf: bytes)
        body.append(Data("\r\n--\(boundary)--\r\n".utf8))
        let (status, data) = try await send("POST", path, rawBody: body, contentType: "multipart/form-data; boundary=\(boundary)")
        if status == 413 { throw error(request, .httpStatus(413, "larger than the server's max_upload_size")) }
        try expectOK(status, data, request)
        let json = try parse(data, request)
        guard let answered = json["name"]?.stringValue else { throw error(request, .notComfyUI("no name in the answer")) }
        return UploadedFile(name: answered, subfolder: json["subfolder"]?.stringValue ?? subfolder, type: json["type"]?.stringValue ?? type)
    }
}
