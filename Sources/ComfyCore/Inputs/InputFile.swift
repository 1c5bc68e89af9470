/// What kind of file an input takes, as ComfyUI's node definitions say (`image_upload`,
/// `video_upload`, `audio_upload`, `file_upload` on a combo of the input folder).
public enum UploadKind: String, Sendable, Equatable, CaseIterable {
    case image
    case video
    case audio
    /// 3D models (`Load3D`): any of the listed extensions, no content check.
    case file

    /// Extensions the kind accepts (lower case, no dot).
    public var extensions: [String] {
        switch self {
        case .image: ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"]
        case .video: ["mp4", "mov", "m4v", "webm", "mkv", "avi", "gif"]
        case .audio: ["wav", "mp3", "flac", "ogg", "opus", "m4a", "aac"]
        case .file: ["glb", "gltf", "obj", "fbx", "stl"]
        }
    }

    /// Whether the first bytes of a file fit the extension (nil: nothing to check).
    static func magicFits(_ prefix: [UInt8], extension ext: String) -> Bool? {
        func starts(_ bytes: [UInt8], at offset: Int = 0) -> Bool {
            prefix.count >= offset + bytes.count && Array(prefix[offset..<(offset + bytes.count)]) == bytes
        }
        func ascii(_ text: String, at offset: Int = 0) -> Bool { starts(Array(text.utf8), at: offset) }
        switch ext {
        case "png": return starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        case "jpg", "jpeg": return starts([0xFF, 0xD8, 0xFF])
        case "webp": return ascii("RIFF") && ascii("WEBP", at: 8)
        case "gif": return ascii("GIF87a") || ascii("GIF89a")
        case "bmp": return ascii("BM")
        case "tif", "tiff": return starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A])
        case "mp4", "mov", "m4v", "m4a": return ascii("ftyp", at: 4)
        case "webm", "mkv": return starts([0x1A, 0x45, 0xDF, 0xA3])
        case "avi": return ascii("RIFF") && ascii("AVI ", at: 8)
        case "wav": return ascii("RIFF") && ascii("WAVE", at: 8)
        case "mp3": return ascii("ID3") || (prefix.count >= 2 && prefix[0] == 0xFF && prefix[1] & 0xE0 == 0xE0)
        case "flac": return ascii("fLaC")
        case "ogg", "opus": return ascii("OggS")
        default: return nil
        }
    }

    /// Why a file of this name and these first bytes cannot go to an input of this kind (nil: it can).
    public func problem(name: String, prefix: [UInt8]) -> String? {
        let ext = InputFile.extensionOf(name)
        guard extensions.contains(ext) else {
            return "\(name): not a\(self == .image || self == .audio ? "n" : "") \(rawValue) file this input takes (extensions: \(extensions.joined(separator: ", ")))"
        }
        if Self.magicFits(prefix, extension: ext) == false {
            return "\(name): its content is not \(ext.uppercased()) (the first bytes do not match)"
        }
        return nil
    }
}

/// Which inputs of which node classes take files uploaded to the server's input folder.
public struct UploadInputs: Sendable, Equatable {
    /// class_type → input name → kind.
    public var inputs: [String: [String: UploadKind]]

    public init(inputs: [String: [String: UploadKind]]) { self.inputs = inputs }

    /// ComfyUI's core loaders, as its `/object_info` describes them (0.3.64 and 0.38).
    public static let builtIn = UploadInputs(inputs: [
        "LoadImage": ["image": .image],
        "LoadImageMask": ["image": .image],
        "LoadVideo": ["file": .video],
        "LoadAudio": ["audio": .audio],
        "Load3D": ["model_file": .file],
        "Load3DAnimation": ["model_file": .file],
    ])

    /// Read from a server's `/object_info`: every input whose options carry `image_upload`,
    /// `video_upload`, `audio_upload` or `file_upload`, except those reading another folder than
    /// the input folder (`image_folder: "output"`).
    public init(objectInfo: JSONValue) {
        var inputs: [String: [String: UploadKind]] = [:]
        for (name, info) in objectInfo.objectValue ?? JSONObject() {
            for section in ["required", "optional"] {
                for (input, spec) in info["input"]?[section]?.objectValue ?? JSONObject() {
                    guard let options = spec.arrayValue?.dropFirst().first?.objectValue else { continue }
                    if let folder = options["image_folder"]?.stringValue, folder != "input" { continue }
                    let flags: [(String, UploadKind)] = [
                        ("image_upload", .image), ("video_upload", .video), ("audio_upload", .audio), ("file_upload", .file),
                    ]
                    guard let kind = flags.first(where: { options[$0.0]?.boolValue == true })?.1 else { continue }
                    inputs[name, default: [:]][input] = kind
                }
            }
        }
        self.inputs = inputs
    }

    /// Read from node definitions, by the same rule as `init(objectInfo:)`.
    public init(definitions: NodeDefinitions) {
        var inputs: [String: [String: UploadKind]] = [:]
        let kinds: [String: UploadKind] = ["image_upload": .image, "video_upload": .video, "audio_upload": .audio, "file_upload": .file]
        for (name, definition) in definitions.classes {
            for input in definition.inputs {
                guard let kind = input.upload.flatMap({ kinds[$0] }), (input.folder ?? "input") == "input" else { continue }
                inputs[name, default: [:]][input.name] = kind
            }
        }
        self.inputs = inputs
    }

    /// These and `other`, `other` winning.
    public func merging(_ other: UploadInputs) -> UploadInputs {
        var merged = inputs
        for (name, fields) in other.inputs { merged[name, default: [:]].merge(fields) { $1 } }
        return UploadInputs(inputs: merged)
    }

    public func kind(classType: String, input: String) -> UploadKind? { inputs[classType]?[input] }

    /// `LoadImage.image, LoadVideo.file, …` for messages.
    public var described: String {
        inputs.keys.sorted().flatMap { name in inputs[name]!.keys.sorted().map { "\(name).\($0)" } }.joined(separator: ", ")
    }
}

/// A local file given as an input's value: where it is, and its size and modification time when
/// the item was added (a file changed by submit time fails the item). Stored with the item as
/// `{"file": path, "size": n, "mtime": t}`, with `"mask": {…}` when a mask goes with it.
public struct InputFile: Sendable, Equatable {
    public var path: String
    public var size: Int64
    /// Seconds since 1970.
    public var modified: Double
    /// A mask merged into the image's alpha channel on the server (`/upload/mask`), as
    /// ComfyUI's mask editor does: `LoadImage` then gives it as its MASK output.
    public var mask: MaskFile?

    public init(path: String, size: Int64, modified: Double, mask: MaskFile? = nil) {
        self.path = path
        self.size = size
        self.modified = modified
        self.mask = mask
    }

    public struct MaskFile: Sendable, Equatable {
        public var path: String
        public var size: Int64
        public var modified: Double

        public init(path: String, size: Int64, modified: Double) {
            self.path = path
            self.size = size
            self.modified = modified
        }
    }

    public var json: JSONValue {
        var object: JSONObject = ["file": .string(path), "size": .int(Int(size)), "mtime": .double(modified)]
        if let mask { object["mask"] = ["file": .string(mask.path), "size": .int(Int(mask.size)), "mtime": .double(mask.modified)] }
        return .object(object)
    }

    /// Reads the stored form; nil for any other value (an input's ordinary literal).
    public init?(json: JSONValue) {
        guard let object = json.objectValue, let path = object["file"]?.stringValue, let size = object["size"]?.numberValue?.int,
            let modified = object["mtime"]?.numberValue?.double
        else { return nil }
        var mask: MaskFile?
        if let stored = object["mask"] {
            guard let maskPath = stored["file"]?.stringValue, let maskSize = stored["size"]?.numberValue?.int,
                let maskModified = stored["mtime"]?.numberValue?.double
            else { return nil }
            mask = MaskFile(path: maskPath, size: Int64(maskSize), modified: maskModified)
        }
        self.init(path: path, size: Int64(size), modified: modified, mask: mask)
    }

    /// The file name's stem (`photos/cat.01.png` → `cat.01`).
    public var stem: String { Self.stem(of: path) }

    /// The folder it is in, as a name (`photos/cat.png` → `photos`).
    public var folderName: String {
        let parts = path.split(separator: "/")
        return parts.count >= 2 ? String(parts[parts.count - 2]) : ""
    }

    static func stem(of path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }

    /// Lower-case extension without the dot ("" when none).
    public static func extensionOf(_ path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        return name[name.index(after: dot)...].lowercased()
    }

    /// The media type to send or serve a file as, from its extension.
    public static func mediaType(_ path: String) -> String {
        switch extensionOf(path) {
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "webp": "image/webp"
        case "gif": "image/gif"
        case "mp4": "video/mp4"
        case "webm": "video/webm"
        case "wav": "audio/wav"
        case "flac": "audio/flac"
        case "mp3": "audio/mpeg"
        case "json": "application/json"
        case "txt": "text/plain; charset=utf-8"
        case "html": "text/html; charset=utf-8"
        // The files of web pages (comfyq serve's, ComfyUI's frontend on the simulator).
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "map": "application/json"
        case "svg": "image/svg+xml"
        case "ico": "image/x-icon"
        case "woff2": "font/woff2"
        case "woff": "font/woff"
        case "ttf": "font/ttf"
        case "wasm": "application/wasm"
        default: "application/octet-stream"
        }
    }

    /// The name a file is uploaded under: the first 16 hex digits of its SHA-256, then its own
    /// name made safe (letters, digits, `.`, `_`, `-`; at most 80 characters). The content in the
    /// name makes the same file one upload per server, and two files of one name two uploads.
    public static func uploadName(path: String, sha256: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        var safe = String(name.unicodeScalars.map { scalar -> Character in
            let c = Character(scalar)
            return c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-") ? c : "_"
        })
        while safe.hasPrefix(".") { safe = "_" + safe.dropFirst() }
        if safe.count > 80 {
            let ext = extensionOf(name)
            safe = String(safe.prefix(79 - ext.count)) + "." + ext
        }
        return "\(sha256.prefix(16))-\(safe)"
    }

    /// The subfolder of the server's input folder comfyq uploads into.
    public static let subfolder = "comfyq"

    /// Every input file an item's parameters hold, by address, in order.
    public static func all(in parameters: JSONValue) -> [(address: String, file: InputFile)] {
        (parameters.objectValue ?? JSONObject()).compactMap { key, value in InputFile(json: value).map { (key, $0) } }
    }
}
