/// Values of a job that come from files, read while the job loads:
/// - `{file: "ref/cat.png"}`: one local file, uploaded to the server that runs the item;
/// - `{files: "photos/*.jpg"}` (`**` for any depth), `{files: ["a.png", "b.png"]}`, or the paths
///   in a text file or a CSV column (`{files: {lines: "list.txt"}}`,
///   `{files: {csv: "shots.csv", column: "image"}}`): a sweep over files, sorted by name for a pattern;
/// - `mask: "masks/{stem}.png"` beside `file`/`files`: each image's mask, merged into its alpha
///   on the server (`LoadImage` gives it as its MASK);
/// - `{lines: "prompts.txt"}`: the file's non-empty lines (not those starting with `#`);
/// - `{csv: "shots.csv", column: "caption"}`: a column of a CSV file with a header row.
/// Paths are relative to the job file (those in a list or CSV to that file). Only file sizes,
/// times and first bytes are read here, never whole images.
struct InputSources {
    let directory: String
    let files: FileAccess?
    let uploads: UploadInputs
    let workflow: Workflow
    let problem: (String, String) -> Void
    /// Whether any value so far was a file (for `{input}` in output names).
    private(set) var foundFiles = false

    init(directory: String, files: FileAccess?, uploads: UploadInputs, workflow: Workflow, problem: @escaping (String, String) -> Void) {
        self.directory = directory
        self.files = files
        self.uploads = uploads
        self.workflow = workflow
        self.problem = problem
    }

    static let sourceKeys: Set<String> = ["file", "files", "lines", "csv"]

    /// Whether a written value is one of the sources above.
    static func isSource(_ value: JSONValue) -> Bool {
        guard let object = value.objectValue else { return false }
        return object.keys.contains { sourceKeys.contains($0) }
    }

    /// The values `raw` stands for: itself when it is a literal, else what its source lists.
    /// Nil when there was a problem (reported).
    mutating func values(_ raw: JSONValue, for address: ParameterAddress, at location: String) -> [JSONValue]? {
        guard Self.isSource(raw), let object = raw.objectValue else { return [raw] }
        let allowed: Set<String> = ["file", "files", "mask", "lines", "csv", "column"]
        for key in object.keys where !allowed.contains(key) {
            problem("\(location)[\(JobLoader.quoted(key))]", "unknown field (fields: file, files, mask, lines, csv, column)")
            return nil
        }
        guard let files else {
            problem(location, "values from files need the job to be read from disk")
            return nil
        }
        if object["file"] != nil || object["files"] != nil {
            return fileValues(object, for: address, at: location, files: files)
        }
        if object["mask"] != nil {
            problem("\(location)[\"mask\"]", "goes with file or files")
            return nil
        }
        guard let texts = textValues(object, at: location, files: files) else { return nil }
        return texts.map { .string($0) }
    }

    // MARK: Files

    private mutating func fileValues(_ object: JSONObject, for address: ParameterAddress, at location: String, files: FileAccess) -> [JSONValue]? {
        let node = workflow[address.nodeID]
        guard let node, let kind = uploads.kind(classType: node.classType, input: address.input) else {
            problem(
                location,
                "\(address) does not take uploaded files (\(node?.classType ?? "?").\(address.input)); inputs that do: \(uploads.described)")
            return nil
        }
        if object["file"] != nil && object["files"] != nil {
            problem(location, "give file (one) or files (a sweep), not both")
            return nil
        }
        var paths: [String] = []
        if let single = object["file"] {
            guard let text = single.stringValue, !text.isEmpty else {
                problem("\(location)[\"file\"]", "must be a path")
                return nil
            }
            paths = [resolve(text, against: directory)]
        } else if let many = object["files"] {
            guard let listed = filePaths(many, at: "\(location)[\"files\"]", files: files) else { return nil }
            paths = listed
        }
        var mask: String?
        if let template = object["mask"] {
            guard let text = template.stringValue, !text.isEmpty else {
                problem("\(location)[\"mask\"]", "must be a path, with {stem} for each file's own (\"masks/{stem}.png\")")
                return nil
            }
            guard node.classType == "LoadImage" else {
                problem(
                    "\(location)[\"mask\"]",
                    "a mask merged into the image goes with LoadImage.image; a \(node.classType) takes the mask file itself")
                return nil
            }
            mask = text
        }
        var values: [JSONValue] = []
        var failed = false
        for path in paths {
            guard let file = checkedFile(path, kind: kind, at: location, files: files) else {
                failed = true
                continue
            }
            var input = InputFile(path: path, size: file.size, modified: file.modified)
            if let mask {
                let maskPath = resolve(mask.replacingStem(with: input.stem), against: directory)
                guard let maskFile = checkedFile(maskPath, kind: .image, at: "\(location)[\"mask\"]", files: files) else {
                    failed = true
                    continue
                }
                guard InputFile.extensionOf(maskPath) == "png" else {
                    problem("\(location)[\"mask\"]", "\(maskPath): masks must be PNG (a grayscale or alpha image)")
                    failed = true
                    continue
                }
                input.mask = InputFile.MaskFile(path: maskPath, size: maskFile.size, modified: maskFile.modified)
            }
            values.append(input.json)
        }
        if failed { return nil }
        foundFiles = foundFiles || !values.isEmpty
        return values
    }

    /// The paths `files:` names: a pattern, a list of paths (or patterns), or the paths in a
    /// text file or a CSV column.
    private func filePaths(_ value: JSONValue, at location: String, files: FileAccess) -> [String]? {
        switch value {
        case .string(let text) where !text.isEmpty:
            return expand(text, base: directory, at: location, files: files)
        case .array(let list) where !list.isEmpty:
            var paths: [String] = []
            for (offset, entry) in list.enumerated() {
                guard let text = entry.stringValue, !text.isEmpty else {
                    problem("\(location)[\(offset)]", "must be a path")
                    return nil
                }
                guard let expanded = expand(text, base: directory, at: "\(location)[\(offset)]", files: files) else { return nil }
                paths += expanded
            }
            return paths
        case .object(let object) where object["lines"] != nil || object["csv"] != nil:
            guard let texts = textValues(object, at: location, files: files) else { return nil }
            // Relative to the list's own folder.
            let listPath = resolve((object["lines"] ?? object["csv"])?.stringValue ?? "", against: directory)
            let base = JobLoader.directory(of: listPath)
            return texts.map { resolve($0.trimmingSpaces.description, against: base) }
        default:
            problem(location, "must be a pattern (\"photos/*.png\"), a list of paths, or {lines: …} / {csv: …, column: …}")
            return nil
        }
    }

    private func expand(_ text: String, base: String, at location: String, files: FileAccess) -> [String]? {
        guard Glob.isPattern(text) else { return [resolve(text, against: base)] }
        switch Glob.expand(text, base: base, files: files) {
        case .failure(let failure):
            problem(location, "\(text): \(failure.message)")
            return nil
        case .success(let matches) where matches.isEmpty:
            problem(location, "\(text) matches no file")
            return nil
        case .success(let matches):
            return matches
        }
    }

    /// The file at `path`, checked: it exists, is a readable file, and its name and first bytes
    /// fit the input's kind.
    private func checkedFile(_ path: String, kind: UploadKind, at location: String, files: FileAccess) -> FileAccess.Status? {
        guard let status = files.status(path) else {
            problem(location, "no such file: \(path)")
            return nil
        }
        guard status.kind == .file else {
            problem(location, "not a file: \(path)")
            return nil
        }
        guard status.readable, let prefix = files.readPrefix(path, 16) else {
            problem(location, "cannot read \(path)")
            return nil
        }
        if let reason = kind.problem(name: path, prefix: prefix) {
            problem(location, reason)
            return nil
        }
        return status
    }

    // MARK: Text

    private func textValues(_ object: JSONObject, at location: String, files: FileAccess) -> [String]? {
        if let lines = object["lines"] {
            guard let relative = lines.stringValue, !relative.isEmpty else {
                problem("\(location)[\"lines\"]", "must be the path of a text file")
                return nil
            }
            let path = resolve(relative, against: directory)
            guard let text = read(path, at: "\(location)[\"lines\"]", files: files) else { return nil }
            let values = TextSources.lines(text)
            if values.isEmpty { problem("\(location)[\"lines\"]", "\(path) has no lines") }
            return values.isEmpty ? nil : values
        }
        guard let relative = object["csv"]?.stringValue, !relative.isEmpty else {
            problem("\(location)[\"csv\"]", "must be the path of a CSV file")
            return nil
        }
        guard let column = object["column"]?.stringValue, !column.isEmpty else {
            problem("\(location)[\"column\"]", "required with csv: the name of a column in its header row")
            return nil
        }
        let path = resolve(relative, against: directory)
        guard let text = read(path, at: "\(location)[\"csv\"]", files: files) else { return nil }
        switch TextSources.csvColumn(text, column: column) {
        case .failure(let failure):
            problem("\(location)[\"csv\"]", "\(path): \(failure.message)")
            return nil
        case .success(let values) where values.isEmpty:
            problem("\(location)[\"csv\"]", "\(path) has no records")
            return nil
        case .success(let values):
            return values
        }
    }

    private func read(_ path: String, at location: String, files: FileAccess) -> String? {
        guard files.status(path)?.kind == .file else {
            problem(location, "no such file: \(path)")
            return nil
        }
        do {
            return try files.readText(path)
        } catch {
            problem(location, "cannot read \(path): \(error)")
            return nil
        }
    }

    private func resolve(_ path: String, against base: String) -> String { JobLoader.resolve(path, against: base) }
}

extension String {
    /// `masks/{stem}.png` with a file's stem in place of `{stem}`.
    func replacingStem(with stem: String) -> String { replacing("{stem}", with: stem) }
}
