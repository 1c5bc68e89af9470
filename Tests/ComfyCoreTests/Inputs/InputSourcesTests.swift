import ComfyCore
import Foundation
import Synchronization
import Testing

/// A folder tree in memory for the loader: files with content, folders, unreadable files and
/// symbolic links (a path whose real path is elsewhere).
final class MemoryFiles: Sendable {
    private let files = Mutex<[String: [UInt8]]>([:])
    private let unreadable = Mutex<Set<String>>([])
    private let links = Mutex<[String: String]>([:])

    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]
    static let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16]

    func add(_ path: String, _ bytes: [UInt8] = MemoryFiles.png) { files.withLock { $0[path] = bytes } }
    func add(_ path: String, text: String) { add(path, Array(text.utf8)) }
    func hide(_ path: String) { _ = unreadable.withLock { $0.insert(path) } }
    /// `path` is a link whose target is `target` (the file itself is listed where the link is).
    func link(_ path: String, to target: String, _ bytes: [UInt8] = MemoryFiles.png) {
        add(path, bytes)
        links.withLock { $0[path] = target }
    }

    private func isDirectory(_ path: String) -> Bool {
        let prefix = path == "/" ? "/" : path + "/"
        return files.withLock { $0.keys.contains { $0.hasPrefix(prefix) } }
    }

    var access: FileAccess {
        FileAccess(
            status: { path in
                if let bytes = self.files.withLock({ $0[path] }) {
                    return FileAccess.Status(kind: .file, size: Int64(bytes.count), modified: 1000, readable: !self.unreadable.withLock { $0.contains(path) })
                }
                return self.isDirectory(path) ? FileAccess.Status(kind: .directory) : nil
            },
            list: { path in
                let prefix = path == "/" ? "/" : path + "/"
                let names = self.files.withLock { $0.keys.filter { $0.hasPrefix(prefix) } }.map { $0.dropFirst(prefix.count).split(separator: "/")[0] }
                return Array(Set(names.map(String.init)))
            },
            readPrefix: { path, count in
                guard !self.unreadable.withLock({ $0.contains(path) }) else { return nil }
                return self.files.withLock { $0[path].map { Array($0.prefix(count)) } }
            },
            realPath: { path in self.links.withLock { $0[path] } ?? path },
            readText: { path in
                guard let bytes = self.files.withLock({ $0[path] }) else { throw CocoaError(.fileNoSuchFile) }
                return String(decoding: bytes, as: UTF8.self)
            })
    }
}

@Suite struct InputSourcesTests {
    static let workflow = Workflow(
        Fixtures.txt2img().orderedNodes + [
            WorkflowNode(id: "10", classType: "LoadImage", title: "Load Image", inputs: ["image": "example.png"]),
            WorkflowNode(id: "12", classType: "LoadImageMask", inputs: ["image": "mask.png", "channel": "red"]),
        ])

    static func folder() -> MemoryFiles {
        let files = MemoryFiles()
        files.add("/j/photos/a.png")
        files.add("/j/photos/c.png")
        files.add("/j/photos/b.png")
        files.add("/j/photos/.hidden.png")
        files.add("/j/photos/notes.txt", text: "hello")
        files.add("/j/photos/deeper/d.png")
        files.add("/j/photos/deeper/still/e.png")
        files.add("/j/photo.jpg", MemoryFiles.jpeg)
        files.add("/j/fake.png", MemoryFiles.jpeg)
        files.add("/j/masks/a.png")
        files.add("/j/masks/b.png")
        files.add("/j/captions.txt", text: "# captions\nfirst\n\nsecond\r\nthird\nfourth\n")
        files.add("/j/shots.csv", text: "image,caption\nphotos/a.png,\"red, wet\"\nphotos/b.png,\"a \"\"quoted\"\" one\"\n")
        files.add("/j/bad.csv", text: "image,caption\n\"open,x\n")
        return files
    }

    static func load(_ fields: String, files: MemoryFiles = folder()) throws(JobValidationError) -> JobSpec {
        let text = #"{workflow: "w.json", \#(fields)}"#
        let workflow = workflow.json.serialized()
        return try JobLoader(readFile: { _ in workflow }, fileExists: { _ in true }, files: files.access).load(text: text, path: "/j/job.json")
    }

    static func paths(_ spec: JobSpec, _ address: String = "Load Image.image") -> [String] {
        spec.expand(random: { 0 }).compactMap { item in item.parametersJSON[address].flatMap(InputFile.init(json:))?.path }
    }

    @Test func aGlobSweepsSortedFilesAndSkipsHiddenOnes() throws {
        let spec = try Self.load(#"matrix: {"Load Image.image": {files: "photos/*.png"}, "KSampler.denoise": [0.4, 0.7]}"#)
        #expect(Self.paths(spec) == ["/j/photos/a.png", "/j/photos/a.png", "/j/photos/b.png", "/j/photos/b.png", "/j/photos/c.png", "/j/photos/c.png"])
        let first = try #require(spec.expand(random: { 0 }).first?.parametersJSON["Load Image.image"].flatMap(InputFile.init(json:)))
        #expect(first.size == Int64(MemoryFiles.png.count) && first.modified == 1000)
    }

    @Test func doubleStarGoesAnyDepth() throws {
        let spec = try Self.load(#"matrix: {"Load Image.image": {files: "photos/**/*.png"}}"#)
        #expect(
            Self.paths(spec) == [
                "/j/photos/a.png", "/j/photos/b.png", "/j/photos/c.png", "/j/photos/deeper/d.png", "/j/photos/deeper/still/e.png",
            ])
    }

    @Test func oneFileAListAndAFileInAList() throws {
        #expect(Self.paths(try Self.load(#"set: {"Load Image.image": {file: "photo.jpg"}}"#)) == ["/j/photo.jpg"])
        #expect(Self.paths(try Self.load(#"zip: {"Load Image.image": {files: ["photos/c.png", "photos/a.png"]}}"#)) == ["/j/photos/c.png", "/j/photos/a.png"])
        #expect(Self.paths(try Self.load(#"matrix: {"Load Image.image": [{file: "photo.jpg"}, {files: "photos/[ab].png"}]}"#)) == [
            "/j/photo.jpg", "/j/photos/a.png", "/j/photos/b.png",
        ])
    }

    @Test func zipFourImagesWithFourCaptionsFromATextFile() throws {
        let files = Self.folder()
        files.add("/j/photos/d.png")
        let spec = try Self.load(#"zip: {"Load Image.image": {files: "photos/*.png"}, "Positive prompt.text": {lines: "captions.txt"}}"#, files: files)
        let items = spec.expand(random: { 0 })
        #expect(items.count == 4)
        #expect(Self.paths(spec) == ["/j/photos/a.png", "/j/photos/b.png", "/j/photos/c.png", "/j/photos/d.png"])
        #expect(items.map { $0.parametersJSON["Positive prompt.text"]?.stringValue ?? "" } == ["first", "second", "third", "fourth"])
    }

    @Test func aCSVWithTwoColumns() throws {
        let spec = try Self.load(
            #"zip: {"Load Image.image": {files: {csv: "shots.csv", column: "image"}}, "Positive prompt.text": {csv: "shots.csv", column: "caption"}}"#)
        #expect(Self.paths(spec) == ["/j/photos/a.png", "/j/photos/b.png"])
        #expect(spec.expand(random: { 0 }).map { $0.parametersJSON["Positive prompt.text"]?.stringValue ?? "" } == ["red, wet", "a \"quoted\" one"])
    }

    @Test func masksGoWithEachImageByItsStem() throws {
        let spec = try Self.load(#"matrix: {"Load Image.image": {files: "photos/[ab].png", mask: "masks/{stem}.png"}}"#)
        let files = spec.expand(random: { 0 }).compactMap { $0.parametersJSON["Load Image.image"].flatMap(InputFile.init(json:)) }
        #expect(files.map(\.mask?.path) == ["/j/masks/a.png", "/j/masks/b.png"])
        // The stored form reads back the same.
        #expect(files.map { InputFile(json: $0.json) } == files.map { Optional($0) })
    }

    @Test func theInputTokenNeedsAFile() throws {
        #expect(throws: JobValidationError.self) { try Self.load(#"output: {name: "{input}_{index}"}"#) }
        let spec = try Self.load(#"set: {"Load Image.image": {file: "photo.jpg"}}, output: {name: "{input_dir}/{input}_{index}"}"#)
        #expect(spec.output.template == "{input_dir}/{input}_{index}")
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        var fields: String
        var message: String
        var prepare: @Sendable (MemoryFiles) -> Void = { _ in }
        var testDescription: String { message }
    }

    static let bad: [Bad] = [
        Bad(fields: #"matrix: {"Load Image.image": {files: "photos/*.jpg"}}"#, message: #"matrix["Load Image.image"]["files"]: photos/*.jpg matches no file"#),
        Bad(fields: #"set: {"Load Image.image": {file: "none.png"}}"#, message: #"set["Load Image.image"]: no such file: /j/none.png"#),
        Bad(fields: #"set: {"Load Image.image": {file: "photos"}}"#, message: #"set["Load Image.image"]: not a file: /j/photos"#),
        Bad(
            fields: #"set: {"Load Image.image": {file: "photos/a.png"}}"#, message: #"set["Load Image.image"]: cannot read /j/photos/a.png"#,
            prepare: { $0.hide("/j/photos/a.png") }),
        Bad(
            fields: #"set: {"Load Image.image": {file: "photos/notes.txt"}}"#,
            message: #"set["Load Image.image"]: /j/photos/notes.txt: not an image file this input takes (extensions: png, jpg, jpeg, webp, gif, bmp, tif, tiff)"#),
        Bad(fields: #"set: {"Load Image.image": {file: "fake.png"}}"#, message: #"set["Load Image.image"]: /j/fake.png: its content is not PNG (the first bytes do not match)"#),
        Bad(fields: #"set: {"KSampler.seed": {file: "photo.jpg"}}"#, message: #"set["KSampler.seed"]: KSampler.seed does not take uploaded files (KSampler.seed)"#),
        Bad(
            fields: #"set: {"Load Image.image": {files: "photos/*.png"}}"#,
            message: #"set["Load Image.image"]: stands for 3 values; set takes one (use matrix or zip to sweep them)"#),
        Bad(fields: #"set: {"Load Image.image": {file: "a.png", name: "x"}}"#, message: #"set["Load Image.image"]["name"]: unknown field"#),
        Bad(fields: #"set: {"Load Image.image": {file: "a.png", files: "b"}}"#, message: "give file (one) or files (a sweep), not both"),
        Bad(fields: #"zip: {"Positive prompt.text": {lines: "none.txt"}}"#, message: #"zip["Positive prompt.text"]["lines"]: no such file: /j/none.txt"#),
        Bad(fields: #"zip: {"Positive prompt.text": {csv: "shots.csv", column: "prompt"}}"#, message: #"/j/shots.csv: no column "prompt" (columns: image, caption)"#),
        Bad(fields: #"zip: {"Positive prompt.text": {csv: "shots.csv"}}"#, message: #"zip["Positive prompt.text"]["column"]: required with csv"#),
        Bad(fields: #"zip: {"Positive prompt.text": {csv: "bad.csv", column: "caption"}}"#, message: "/j/bad.csv: line 3: a quoted field is not closed"),
        Bad(
            fields: #"set: {"LoadImageMask.image": {file: "photos/a.png", mask: "masks/{stem}.png"}}"#,
            message: "a mask merged into the image goes with LoadImage.image; a LoadImageMask takes the mask file itself"),
        Bad(fields: #"set: {"Load Image.image": {file: "photos/c.png", mask: "masks/{stem}.png"}}"#, message: "no such file: /j/masks/c.png"),
        Bad(
            fields: #"matrix: {"Load Image.image": {files: "photos/*.png"}}"#, message: "/j/photos/evil.png leads outside /j/photos (a symbolic link)",
            prepare: { $0.link("/j/photos/evil.png", to: "/etc/secret.png") }),
    ]

    @Test(arguments: bad) func badInputIsOneClearLine(_ testCase: Bad) throws {
        let files = Self.folder()
        testCase.prepare(files)
        do {
            _ = try Self.load(testCase.fields, files: files)
            Issue.record("loaded: \(testCase.fields)")
        } catch {
            #expect(error.problems.count == 1, "\(error.problems)")
            let line = error.description
            #expect(line.hasPrefix("/j/job.json: "), "\(line)")
            #expect(line.contains(testCase.message), "\(line)")
            #expect(!line.contains("\n"))
        }
    }

    @Test func aFileValueNeedsAFileSystem() {
        let workflow = Self.workflow.json.serialized()
        let loader = JobLoader(readFile: { _ in workflow }, fileExists: { _ in true })
        #expect(throws: JobValidationError.self) { try loader.load(text: #"{workflow: "w.json", set: {"Load Image.image": {file: "a.png"}}}"#, path: "/j/j.json") }
    }

    @Test func addingReadsOnlyTheFirstBytes() throws {
        // A file system that refuses whole reads: loading must not need them.
        let files = Self.folder()
        let access = files.access
        let guarded = FileAccess(
            status: access.status, list: access.list, readPrefix: { path, count in count <= 16 ? access.readPrefix(path, count) : nil },
            realPath: access.realPath, readText: access.readText)
        let workflow = Self.workflow.json.serialized()
        let spec = try JobLoader(readFile: { _ in workflow }, fileExists: { _ in true }, files: guarded).load(
            text: #"{workflow: "w.json", matrix: {"Load Image.image": {files: "photos/**/*.png"}}}"#, path: "/j/job.json")
        #expect(spec.itemCount == 5)
    }
}

@Suite struct GlobAndTextTests {
    @Test(arguments: [
        ("a.png", "*.png", true), ("a.PNG", "*.png", false), (".a.png", "*.png", false), (".a.png", ".*.png", true),
        ("ab.png", "?b.png", true), ("b.png", "[ab].png", true), ("c.png", "[ab].png", false), ("c.png", "[!ab].png", true),
        ("q.png", "[a-z].png", true), ("Q.png", "[a-z].png", false), ("abc", "a*c", true), ("ac", "a*c", true), ("ab", "a*c", false),
        ("photo 1.jpg", "photo *.jpg", true),
    ])
    func patterns(_ name: String, _ pattern: String, _ expected: Bool) {
        #expect(Glob.matches(name, pattern) == expected)
    }

    @Test func lines() {
        #expect(TextSources.lines("one\r\ntwo\n\n# note\n  \nthree") == ["one", "two", "three"])
    }

    @Test func csv() throws {
        let text = "\u{FEFF}name,text\r\nx,\"multi\nline\"\ny,plain\n\n"
        #expect(try TextSources.csvColumn(text, column: "text").get() == ["multi\nline", "plain"])
        if case .success(let values) = TextSources.csvColumn("a,b\n1\n", column: "b") { Issue.record("a short record was read: \(values)") }
    }

    @Test(arguments: [
        ("/x/cat.png", "cafe0123456789ab-cat.png"), ("/x/my photo (1).JPG", "cafe0123456789ab-my_photo__1_.JPG"),
        ("/x/.hidden.png", "cafe0123456789ab-_hidden.png"), ("/x/çà.png", "cafe0123456789ab-__.png"),
    ])
    func uploadNames(_ path: String, _ expected: String) {
        #expect(InputFile.uploadName(path: path, sha256: "cafe0123456789abcdef") == expected)
    }

    @Test func longNamesKeepTheirExtension() {
        let name = InputFile.uploadName(path: "/x/" + String(repeating: "a", count: 200) + ".webp", sha256: "0123456789abcdef99")
        #expect(name.count == 17 + 80 && name.hasSuffix(".webp") && !name.contains("/"))
    }

    @Test func uploadInputsFromARealServersObjectInfo() throws {
        let url = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/object_info_loaders.json")
        let info = try JSONValue(parsing: try String(contentsOf: url, encoding: .utf8))
        let uploads = UploadInputs(objectInfo: info)
        #expect(uploads.kind(classType: "LoadImage", input: "image") == .image)
        #expect(uploads.kind(classType: "LoadImageMask", input: "image") == .image)
        #expect(uploads.kind(classType: "LoadVideo", input: "file") == .video)
        #expect(uploads.kind(classType: "LoadAudio", input: "audio") == .audio)
        #expect(uploads.kind(classType: "Load3D", input: "model_file") == .file)
        #expect(uploads.kind(classType: "LoadImageOutput", input: "image") == nil, "reads the output folder, not uploads")
        #expect(uploads.kind(classType: "KSampler", input: "seed") == nil)
        // The built-in table says the same for what that server has.
        for (name, fields) in uploads.inputs { for (input, kind) in fields { #expect(UploadInputs.builtIn.kind(classType: name, input: input) == kind) } }
    }

    @Test(arguments: [
        ("a.png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] as [UInt8], UploadKind.image, true),
        ("a.jpg", [0xFF, 0xD8, 0xFF, 0xE1], .image, true), ("a.webp", Array("RIFF\0\0\0\0WEBP".utf8), .image, true),
        ("a.png", [0xFF, 0xD8, 0xFF], .image, false), ("a.mp4", Array("\0\0\0\u{18}ftypisom".utf8), .video, true),
        ("a.wav", Array("RIFF\0\0\0\0WAVE".utf8), .audio, true), ("a.flac", Array("OggS".utf8), .audio, false),
        ("a.mp3", Array("ID3".utf8), .audio, true), ("a.png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], .audio, false),
        ("model.glb", Array("glTF".utf8), .file, true),
    ])
    func kinds(_ name: String, _ prefix: [UInt8], _ kind: UploadKind, _ accepted: Bool) {
        #expect((kind.problem(name: name, prefix: prefix) == nil) == accepted)
    }
}
