/// A server's node definitions (`GET /object_info`), read into what conversion and pre-flight need:
/// each class's inputs in order with their kinds and limits, its outputs, and the widget list the
/// ComfyUI frontend builds for it.
public struct NodeDefinitions: Sendable {
    public private(set) var classes: [String: NodeDefinition]

    public init(_ classes: [NodeDefinition]) {
        self.classes = Dictionary(classes.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
    }

    /// Reads `/object_info`. Classes whose entry is not an object are skipped (a custom node's
    /// broken definition must not hide the others); the result says how many there were.
    public init(objectInfo: JSONValue) throws(NodeDefinitionsError) {
        guard let object = objectInfo.objectValue else { throw .notAnObject(objectInfo.kindName) }
        var list: [NodeDefinition] = []
        list.reserveCapacity(object.count)
        for (name, info) in object {
            guard let info = info.objectValue else { continue }
            list.append(NodeDefinition(name: name, info: info))
        }
        self.init(list)
    }

    public subscript(name: String) -> NodeDefinition? { classes[name] }
    public var count: Int { classes.count }
}

public enum NodeDefinitionsError: Error, Sendable, Equatable, CustomStringConvertible {
    case notAnObject(String)

    public var description: String {
        switch self {
        case .notAnObject(let kind): "object_info must be a JSON object of node classes, not \(kind)"
        }
    }
}

/// One node class as `/object_info` describes it.
public struct NodeDefinition: Sendable {
    public var name: String
    public var displayName: String?
    /// Inputs in the frontend's order: `input_order.required`, then `.optional`, then any not listed.
    /// Hidden inputs are not here.
    public var inputs: [InputDefinition]
    /// Output types, in slot order.
    public var outputs: [String]
    public var isOutputNode: Bool
    /// The widgets the frontend builds for a node of this class, in order (see `FrontendWidgets`).
    public var widgets: [WidgetDefinition]
    /// Each list input's values, for lookups.
    private var options: [String: Set<String>]

    public init(name: String, displayName: String? = nil, inputs: [InputDefinition], outputs: [String] = [], isOutputNode: Bool = false) {
        self.name = name
        self.displayName = displayName
        self.inputs = inputs
        self.outputs = outputs
        self.isOutputNode = isOutputNode
        self.widgets = FrontendWidgets.widgets(classType: name, inputs: inputs)
        var options: [String: Set<String>] = [:]
        for input in inputs { if case .combo(let values) = input.kind { options[input.name] = Set(values) } }
        self.options = options
    }

    /// The values a list input accepts (empty for other inputs).
    public func optionSet(_ input: String) -> Set<String> { options[input] ?? [] }

    init(name: String, info: JSONObject) {
        var inputs: [InputDefinition] = []
        let order = info["input_order"]?.objectValue
        for (section, required) in [("required", true), ("optional", false)] {
            let specs = info["input"]?[section]?.objectValue ?? JSONObject()
            var names = order?[section]?.arrayValue?.compactMap(\.stringValue) ?? []
            names += specs.keys.filter { !names.contains($0) }
            for input in names {
                guard let spec = specs[input] else { continue }
                inputs.append(InputDefinition(name: input, spec: spec, required: required))
            }
        }
        self.init(
            name: name, displayName: info["display_name"]?.stringValue, inputs: inputs,
            outputs: info["output"]?.arrayValue?.map { $0.stringValue ?? "*" } ?? [],
            isOutputNode: info["output_node"]?.boolValue ?? false)
    }

    public func input(named name: String) -> InputDefinition? { inputs.first { $0.name == name } }
    public func widget(named name: String) -> WidgetDefinition? { widgets.first { $0.name == name } }

    /// The frontend's default title when a node has none of its own.
    public var title: String { displayName.flatMap { $0.isEmpty ? nil : $0 } ?? name }
}

/// One input of a node class: `"name": [TYPE or [options], {options}]`.
public struct InputDefinition: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case int, float, boolean, string
        /// A list of values (checkpoints, samplers…); `COMBO` with `options` in newer servers.
        case combo([String])
        /// Anything else: a link type such as `MODEL`, or an extension's widget type.
        case other(String)
    }

    public var name: String
    public var kind: Kind
    public var required: Bool
    public var defaultValue: JSONValue?
    public var min: Double?
    public var max: Double?
    /// Link only, even for a widget type.
    public var forceInput: Bool
    /// `control_after_generate`: true, false, or absent (nil).
    public var controlAfterGenerate: Bool?
    /// Typed text goes through the frontend's dynamic prompts (`{a|b}`, comments).
    public var dynamicPrompts: Bool
    /// `image_upload`, `video_upload`, `audio_upload` or `file_upload`: the frontend adds an upload button.
    public var upload: String?
    /// `image_folder`: the folder a file list reads (`input` when absent; `output` for LoadImageOutput).
    public var folder: String?

    public init(name: String, kind: Kind, required: Bool = true, defaultValue: JSONValue? = nil, min: Double? = nil, max: Double? = nil) {
        self.name = name
        self.kind = kind
        self.required = required
        self.defaultValue = defaultValue
        self.min = min
        self.max = max
        forceInput = false
        controlAfterGenerate = nil
        dynamicPrompts = false
        upload = nil
        folder = nil
    }

    init(name: String, spec: JSONValue, required: Bool) {
        let parts = spec.arrayValue ?? [spec]
        let options = parts.count > 1 ? parts[1].objectValue ?? JSONObject() : JSONObject()
        let kind: Kind
        switch parts.first {
        case .array(let values)?: kind = .combo(values.map { $0.stringValue ?? $0.serialized() })
        case .string("COMBO")?: kind = .combo(options["options"]?.arrayValue?.map { $0.stringValue ?? $0.serialized() } ?? [])
        case .string("INT")?: kind = .int
        case .string("FLOAT")?: kind = .float
        case .string("BOOLEAN")?: kind = .boolean
        case .string("STRING")?: kind = .string
        case .string(let type)?: kind = .other(type)
        default: kind = .other("*")
        }
        self.init(
            name: name, kind: kind, required: required, defaultValue: options["default"], min: options["min"]?.numberValue?.double,
            max: options["max"]?.numberValue?.double)
        forceInput = options["forceInput"]?.boolValue ?? false
        controlAfterGenerate = options["control_after_generate"]?.boolValue
        dynamicPrompts = options["dynamicPrompts"]?.boolValue ?? false
        upload = ["image_upload", "video_upload", "audio_upload", "file_upload"].first { options[$0]?.boolValue == true }
        folder = options["image_folder"]?.stringValue
    }

    /// The type name as links carry it: `INT`, `COMBO`, `MODEL`…
    public var typeName: String {
        switch kind {
        case .int: "INT"
        case .float: "FLOAT"
        case .boolean: "BOOLEAN"
        case .string: "STRING"
        case .combo: "COMBO"
        case .other(let type): type
        }
    }

    /// Whether the frontend gives this input a widget (a value typed on the node) rather than only a socket.
    public var hasWidget: Bool {
        guard !forceInput else { return false }
        switch kind {
        case .int, .float, .boolean, .string, .combo: return true
        case .other(let type): return FrontendWidgets.extensionWidgetTypes[type] != nil
        }
    }

    /// The value a widget holds when the file gives none: the definition's default, the first
    /// option of a list, or the frontend's zero value.
    public var widgetDefault: JSONValue {
        if let defaultValue { return defaultValue }
        switch kind {
        case .int, .float: return min.map { .double($0) } ?? .int(0)
        case .boolean: return .bool(false)
        case .string: return .string("")
        case .combo(let options): return options.first.map { .string($0) } ?? .null
        case .other: return .string("")
        }
    }
}

/// One widget on a node as the frontend builds it.
public struct WidgetDefinition: Sendable, Equatable {
    public var name: String
    /// Has a slot in the saved `widgets_values`.
    public var savedInWorkflow: Bool
    /// Goes into the API prompt's `inputs`.
    public var sentInPrompt: Bool
    /// The value when the file gives none.
    public var defaultValue: JSONValue
    /// The input this widget edits (nil for buttons and control widgets the frontend adds).
    public var input: String?

    public init(name: String, savedInWorkflow: Bool = true, sentInPrompt: Bool = true, defaultValue: JSONValue, input: String? = nil) {
        self.name = name
        self.savedInWorkflow = savedInWorkflow
        self.sentInPrompt = sentInPrompt
        self.defaultValue = defaultValue
        self.input = input
    }
}

/// What ComfyUI's frontend (1.58) builds on top of `/object_info`, built in here because the
/// server does not describe it: control widgets after seeds, upload buttons, and the widgets a few
/// core extensions add. Checked against the frontend's own widget lists for every node class of a
/// ComfyUI 0.3.64 server in the tests.
public enum FrontendWidgets {
    /// Extension widget types on inputs, and the widgets each builds: (extra widgets after the
    /// input's own, whether the input's widget is saved, whether it is sent).
    static let extensionWidgetTypes: [String: (saved: Bool, sent: Bool, extra: [WidgetDefinition])] = [
        "AUDIO_UI": (false, false, []),
        "IMAGEUPLOAD": (true, false, []),
        "AUDIOUPLOAD": (true, false, []),
        "PREVIEW_3D": (true, true, []),
        "LOAD_3D": (true, true, []),
        "WEBCAM": (true, true, []),
        "MARKDOWN": (true, true, []),
        "AUDIO_RECORD": (true, true, [WidgetDefinition(name: "audio#1", sentInPrompt: false, defaultValue: .null)]),
    ]

    /// Widgets core extensions add to particular classes, after the class's own.
    static let added: [String: [WidgetDefinition]] = [
        "LoadImageOutput": [
            WidgetDefinition(name: "Auto-refresh after generation", sentInPrompt: false, defaultValue: .bool(false)),
            WidgetDefinition(name: "refresh", defaultValue: "refresh"),
        ],
        "WebcamCapture": [WidgetDefinition(name: "waiting for camera...", defaultValue: .null)],
        "SaveAudio": [audioUI], "SaveAudioMP3": [audioUI], "SaveAudioOpus": [audioUI], "PreviewAudio": [audioUI],
        "Preview3D": [WidgetDefinition(name: "image", defaultValue: "")],
        "SaveGLB": [WidgetDefinition(name: "image", defaultValue: "")],
        "PreviewAny": [
            WidgetDefinition(name: "preview_text", savedInWorkflow: false, sentInPrompt: false, defaultValue: ""),
            WidgetDefinition(name: "preview_mode", savedInWorkflow: false, sentInPrompt: false, defaultValue: .bool(false)),
        ],
    ]
    /// Buttons Load3D (not Load3DAnimation, since 1.58) puts right after its file list.
    static let load3DButtons = ["upload 3d model", "upload extra resources", "clear"].map {
        WidgetDefinition(name: $0, defaultValue: .string($0))
    }
    static let audioUI = WidgetDefinition(name: "audioUI", savedInWorkflow: false, sentInPrompt: false, defaultValue: "")

    /// Classes whose widgets need the browser (captures the page takes as the prompt is queued),
    /// which a converter cannot reproduce. (`RecordAudio` is not one: its widget holds the file
    /// the page recorded and uploaded, and the frontend sends that value as it is.)
    public static let browserOnly: Set<String> = ["Load3D", "Load3DAnimation", "WebcamCapture"]

    /// The widget list of a class with these inputs, in the frontend's order.
    public static func widgets(classType: String, inputs: [InputDefinition]) -> [WidgetDefinition] {
        var widgets: [WidgetDefinition] = []
        var uploadButton = false
        for input in inputs where input.hasWidget {
            switch input.kind {
            case .other(let type):
                let spec = extensionWidgetTypes[type]!
                widgets.append(
                    WidgetDefinition(
                        name: input.name, savedInWorkflow: spec.saved, sentInPrompt: spec.sent, defaultValue: input.widgetDefault, input: input.name))
                widgets += spec.extra
                continue
            default:
                widgets.append(WidgetDefinition(name: input.name, defaultValue: input.widgetDefault, input: input.name))
            }
            let control = WidgetDefinition(name: "control_after_generate", sentInPrompt: false, defaultValue: "randomize")
            switch input.kind {
            case .int where input.controlAfterGenerate == true || (input.controlAfterGenerate == nil && ["seed", "noise_seed"].contains(input.name)):
                widgets.append(control)
            case .combo where input.controlAfterGenerate == true:
                widgets.append(control)
                widgets.append(WidgetDefinition(name: "control_filter_list", sentInPrompt: false, defaultValue: ""))
            default: break
            }
            switch input.upload {
            case "file_upload"? where classType == "Load3D": widgets += load3DButtons
            case "file_upload"?: break
            case "audio_upload"?:
                widgets.append(audioUI)
                uploadButton = true
            case .some: uploadButton = true
            case nil: break
            }
        }
        widgets += added[classType] ?? []
        if uploadButton { widgets.append(WidgetDefinition(name: "upload", sentInPrompt: false, defaultValue: .null)) }
        return widgets
    }
}
