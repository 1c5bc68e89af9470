/// Converts a UI-format workflow to the API format the way ComfyUI's frontend does
/// (`graphToPrompt`, frontend 1.58), given a server's node definitions. Pure: the date (for
/// `%date:…%` in file names) and the random choices of dynamic prompts are inputs.
///
/// The rules, each documented in `jobs/README.md`: every node is emitted except virtual ones
/// (Reroute, PrimitiveNode, notes, subgraph instances) and muted or bypassed ones; widget values
/// are mapped in the frontend's widget order; links are followed through Reroutes, bypassed nodes
/// (by type) and subgraphs (flattened, ids `instance:inner`); PrimitiveNodes write their value into
/// the widgets they drive; links from nodes that are not emitted are dropped.
public struct UIConversion {
    public var definitions: NodeDefinitions
    /// The time `%date:FMT%` tokens in file names stand for.
    public var date: DateParts
    /// Picks one of `count` choices of a dynamic prompt (`{a|b|c}`).
    public var choose: (Int) -> Int

    public init(definitions: NodeDefinitions, date: DateParts = DateParts(), choose: @escaping (Int) -> Int = { Int.random(in: 0..<$0) }) {
        self.definitions = definitions
        self.date = date
        self.choose = choose
    }

    /// Node types that exist only in the frontend.
    public static let virtualTypes: Set<String> = ["Reroute", "PrimitiveNode", "Note", "MarkdownNote"]
    /// Renames the frontend applies when it loads a workflow.
    static let renamed = [
        "T2IAdapterLoader": "ControlNetLoader", "ConditioningAverage ": "ConditioningAverage",
        "SDV_img2vid_Conditioning": "SVD_img2vid_Conditioning",
    ]

    public struct Result: Sendable {
        public var workflow: Workflow
        /// Things the frontend would also have done silently: values beyond a node's widgets ignored.
        public var notes: [String]
    }

    /// Converts `ui`, or throws every problem found (unknown node types, values that do not fit a widget).
    public func convert(_ ui: UIWorkflow) throws(UIConversionError) -> Result {
        var run = ConversionRun(conversion: self, ui: ui)
        return try run.convert()
    }

    public func convert(json: JSONValue) throws(UIConversionError) -> Result {
        let ui: UIWorkflow
        do { ui = try UIWorkflow(json: json) } catch { throw UIConversionError(problems: ["\(error)"]) }
        return try convert(ui)
    }
}

/// Every problem that stops a conversion, one line each.
public struct UIConversionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var problems: [String]
    public init(problems: [String]) { self.problems = problems }
    public var description: String { problems.joined(separator: "\n") }
}

/// A calendar date and time of day, for `%date:yyyy-MM-dd%`.
public struct DateParts: Sendable, Equatable {
    public var year, month, day, hour, minute, second: Int
    public init(year: Int = 1970, month: Int = 1, day: Int = 1, hour: Int = 0, minute: Int = 0, second: Int = 0) {
        (self.year, self.month, self.day, self.hour, self.minute, self.second) = (year, month, day, hour, minute, second)
    }
}

/// Where a node sits: the root graph, or a subgraph reached through a chain of instances.
private final class Scope {
    let graph: UIGraph
    /// The API id prefix: `""` at the root, `"85:"` inside instance 85.
    let prefix: String
    let parent: Scope?
    let instance: UINode?

    init(graph: UIGraph, prefix: String = "", parent: Scope? = nil, instance: UINode? = nil) {
        self.graph = graph
        self.prefix = prefix
        self.parent = parent
        self.instance = instance
    }

    func child(_ instance: UINode, _ graph: UIGraph) -> Scope {
        Scope(graph: graph, prefix: prefix + instance.id + ":", parent: self, instance: instance)
    }
}

/// What a link resolves to.
private enum Resolution {
    case link(String, Int)
    case value(JSONValue)
}

private struct ConversionRun {
    let conversion: UIConversion
    let ui: UIWorkflow
    var problems: [String] = []
    var notes: [String] = []
    /// Values PrimitiveNodes write into their targets: graph id → node id → widget → value.
    var driven: [String: [String: [String: JSONValue]]] = [:]
    var nodes: [WorkflowNode] = []

    init(conversion: UIConversion, ui: UIWorkflow) {
        self.conversion = conversion
        self.ui = ui
    }

    var definitions: NodeDefinitions { conversion.definitions }

    func classType(_ node: UINode) -> String { UIConversion.renamed[node.type] ?? node.type }
    func label(_ node: UINode, _ scope: Scope) -> String {
        "node \(scope.prefix)\(node.id)" + (node.title.map { " \"\($0)\"" } ?? "")
    }

    mutating func convert() throws(UIConversionError) -> UIConversion.Result {
        applyPrimitives(ui.root)
        for id in ui.subgraphOrder { applyPrimitives(ui.subgraphs[id]!) }
        emit(Scope(graph: ui.root))
        if !problems.isEmpty { throw UIConversionError(problems: problems) }
        // Links from nodes that were not emitted (muted ones) are dropped, not replaced.
        let emitted = Set(nodes.map(\.id))
        for index in nodes.indices {
            for (name, value) in nodes[index].inputs {
                if let link = Workflow.link(in: value), !emitted.contains(link.node) { nodes[index].inputs[name] = nil }
            }
        }
        guard !nodes.isEmpty else { throw UIConversionError(problems: ["the workflow has no nodes to run"]) }
        return UIConversion.Result(workflow: Workflow(nodes), notes: notes)
    }

    // MARK: Emission

    mutating func emit(_ scope: Scope) {
        for node in scope.graph.nodes {
            if UIConversion.virtualTypes.contains(node.type) { continue }
            if let subgraph = ui.subgraphs[node.type] {
                // A muted or bypassed instance at the root is not expanded; nested ones always are.
                if scope.parent == nil && (node.isMuted || node.isBypassed) { continue }
                emit(scope.child(node, subgraph))
                continue
            }
            if node.isMuted || node.isBypassed { continue }
            let type = classType(node)
            guard let definition = definitions[type] else {
                problems.append("\(label(node, scope)): node type \(type) is not on the server (a custom node that is not installed?)")
                continue
            }
            if FrontendWidgets.browserOnly.contains(type) {
                problems.append("\(label(node, scope)): \(type) needs ComfyUI's web page (it uploads what the browser captures) and cannot be converted")
                continue
            }
            var inputs = JSONObject()
            let values = widgetValues(node, definition, scope)
            for (widget, value) in zip(definition.widgets, values) where widget.sentInPrompt {
                inputs[widget.name] = promptValue(value, widget: widget, definition: definition)
            }
            for input in orderedInputs(node, definition) {
                guard let linkID = input.link, let link = scope.graph.links[linkID] else { continue }
                switch resolve(link, in: scope, consumerType: input.type) {
                case .link(let id, let slot)?: inputs[input.name] = [.string(id), .int(slot)]
                case .value(let value)?: inputs[input.name] = promptValue(value, widget: definition.widget(named: input.name), definition: definition)
                case nil: break
                }
            }
            nodes.append(WorkflowNode(id: scope.prefix + node.id, classType: type, title: node.title ?? definition.title, inputs: inputs))
        }
    }

    /// The node's inputs in the frontend's order: link-only sockets, then widget sockets (both in
    /// the definition's order), then inputs the file has that the definition does not.
    func orderedInputs(_ node: UINode, _ definition: NodeDefinition?) -> [UINode.Input] {
        guard let definition else { return node.inputs }
        let byName = Dictionary(node.inputs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var ordered: [UINode.Input] = []
        for input in definition.inputs.filter({ !$0.hasWidget }) + definition.inputs.filter(\.hasWidget) {
            ordered.append(byName[input.name] ?? UINode.Input(name: input.name, type: input.typeName, link: nil, widget: nil))
        }
        let known = Set(definition.inputs.map(\.name))
        ordered += node.inputs.filter { !known.contains($0.name) }
        return ordered
    }

    /// The node's widget values, one per widget of its definition: the saved values mapped onto
    /// the widgets that are saved, defaults for the rest, then what PrimitiveNodes drive.
    mutating func widgetValues(_ node: UINode, _ definition: NodeDefinition, _ scope: Scope) -> [JSONValue] {
        var values = definition.widgets.map(\.defaultValue)
        let saved = Self.withoutLegacyForceInputValues(node.widgetsValues ?? [], definition)
        let slots = definition.widgets.indices.filter { definition.widgets[$0].savedInWorkflow }
        for (slot, value) in zip(slots, saved) {
            let widget = definition.widgets[slot]
            if let input = widget.input.flatMap(definition.input(named:)), let reason = mismatch(value, input) {
                problems.append("\(label(node, scope)): widget \(widget.name) = \(value.serialized()): \(reason)")
            }
            values[slot] = value
        }
        if saved.count > slots.count {
            notes.append(
                "\(label(node, scope)): \(saved.count) saved widget values for \(slots.count) widgets of \(definition.name); the extra ones are ignored, as ComfyUI does")
        } else if saved.count < slots.count, node.widgetsValues != nil {
            let missing = slots[saved.count...].map { definition.widgets[$0].name }
            notes.append(
                "\(label(node, scope)): \(saved.count) saved widget value\(saved.count == 1 ? "" : "s") for \(slots.count) widgets of \(definition.name); \(missing.joined(separator: ", ")) keep\(missing.count == 1 ? "s its default" : " their defaults"), as ComfyUI does")
        }
        var overrides = driven[scope.graph.id]?[node.id] ?? [:]
        if let instance = scope.instance { overrides.merge(promoted(instance).inner[node.id] ?? [:]) { $1 } }
        for (name, value) in overrides {
            if let index = definition.widgets.firstIndex(where: { $0.name == name }) { values[index] = value }
        }
        // Loading fixes old KSampler sampler names.
        if definition.name == "KSampler" || definition.name == "KSamplerAdvanced",
            let index = definition.widgets.firstIndex(where: { $0.name == "sampler_name" }),
            let name = values[index].stringValue, name.hasPrefix("sample_")
        {
            values[index] = .string(String(name.dropFirst("sample_".count)))
        }
        return values
    }

    /// Workflows saved before frontend 1.16 hold a value for each `forceInput` input among their
    /// widget values (those inputs were widgets then). The frontend drops them as it loads the
    /// node (`migrateWidgetsValues`), when the count says they are there: one value per input
    /// that has a widget or is `forceInput`, two for an input with `control_after_generate`.
    static func withoutLegacyForceInputValues(_ saved: [JSONValue], _ definition: NodeDefinition) -> [JSONValue] {
        let widgetNames = Set(definition.widgets.map(\.name))
        var forced: [Bool] = []
        for input in definition.inputs where widgetNames.contains(input.name) || input.forceInput {
            forced.append(input.forceInput)
            if input.controlAfterGenerate == true { forced.append(false) }
        }
        guard forced.contains(true), forced.count == saved.count else { return saved }
        return zip(saved, forced).filter { !$0.1 }.map(\.0)
    }

    /// Why a saved value cannot be a widget's value (a number for a list, text for a number).
    func mismatch(_ value: JSONValue, _ input: InputDefinition) -> String? {
        switch (input.kind, value) {
        case (_, .null): return nil
        case (.int, .number), (.float, .number), (.boolean, .bool), (.string, .string), (.combo, .string), (.combo, .number), (.combo, .bool):
            return nil
        case (.int, _), (.float, _): return "not a number (\(input.name) is \(input.typeName))"
        case (.boolean, _): return "not true or false"
        case (.string, .number), (.string, .bool): return nil
        case (.string, _): return "not text"
        case (.combo, _): return "not one of the listed values"
        case (.other, _): return nil
        }
    }

    /// A widget value as the prompt carries it: text through the dynamic-prompt and file-name
    /// rules where they apply, lists wrapped as `{"__value__": […]}`.
    func promptValue(_ value: JSONValue, widget: WidgetDefinition?, definition: NodeDefinition) -> JSONValue {
        switch value {
        case .array: return ["__value__": value]
        case .string(let text):
            if let input = widget?.input.flatMap(definition.input(named:)), input.dynamicPrompts {
                return .string(DynamicPrompt.process(text, choose: conversion.choose))
            }
            if widget?.name == "filename_prefix", FilenameTokens.classes.contains(definition.name) {
                return .string(FilenameTokens(ui: ui, definitions: definitions, date: conversion.date).apply(text))
            }
            return value
        default: return value
        }
    }

    // MARK: PrimitiveNodes

    /// Each PrimitiveNode with links writes its value into the widget of every input it drives,
    /// in its own graph.
    mutating func applyPrimitives(_ graph: UIGraph) {
        for node in graph.nodes where node.type == "PrimitiveNode" {
            guard var value = node.widgetsValues?.first else { continue }
            if node.properties["Run widget replace on values"]?.boolValue == true, let text = value.stringValue {
                value = .string(FilenameTokens(ui: ui, definitions: definitions, date: conversion.date).apply(text))
            }
            for output in node.outputs {
                for linkID in output.links {
                    guard let link = graph.links[linkID], let target = graph.node(link.targetID),
                        let input = target.inputs.first(where: { $0.link == linkID })
                    else { continue }
                    driven[graph.id, default: [:]][target.id, default: [:]][input.widget ?? input.name] = value
                }
            }
        }
    }

    // MARK: Links

    /// Follows a link back to the node output (or value) that feeds it.
    func resolve(_ link: UILink, in scope: Scope, consumerType: String) -> Resolution? {
        if link.originID == UILink.subgraphInput {
            // From the subgraph's input node: the instance's matching input, outside.
            guard let instance = scope.instance, let outer = scope.parent, let graphInput = scope.graph.inputs[safe: link.originSlot] else { return nil }
            // By name; by position only when the instance has a socket for every subgraph input
            // (an instance saved without sockets for some, such as promoted widgets left unlinked,
            // would otherwise take another input's link: the frontend matches by name).
            let input =
                instance.inputs.first { $0.name == graphInput.name }
                ?? (instance.inputs.count == scope.graph.inputs.count ? instance.inputs[safe: link.originSlot] : nil)
            if let linkID = input?.link, let outerLink = outer.graph.links[linkID] {
                return resolve(outerLink, in: outer, consumerType: consumerType)
            }
            return promotedValue(instance, input: link.originSlot).map(Resolution.value)
        }
        guard let origin = scope.graph.node(link.originID) else { return nil }
        return resolveOutput(origin, slot: link.originSlot, in: scope, consumerType: consumerType)
    }

    func resolveOutput(_ node: UINode, slot: Int, in scope: Scope, consumerType: String) -> Resolution? {
        switch node.type {
        case "Reroute":
            guard let linkID = node.inputs.first?.link, let link = scope.graph.links[linkID] else { return nil }
            return resolve(link, in: scope, consumerType: consumerType)
        case "PrimitiveNode", "Note", "MarkdownNote": return nil
        default: break
        }
        if node.isMuted { return nil }
        if node.isBypassed { return bypass(node, slot: slot, in: scope, consumerType: consumerType) }
        if let subgraph = ui.subgraphs[node.type] {
            guard let output = subgraph.outputs[safe: slot], let linkID = output.linkIDs.first, let inner = subgraph.links[linkID] else { return nil }
            return resolve(inner, in: scope.child(node, subgraph), consumerType: consumerType)
        }
        return .link(scope.prefix + node.id, slot)
    }

    /// A bypassed node passes one of its inputs through, chosen by type as the frontend does.
    func bypass(_ node: UINode, slot: Int, in scope: Scope, consumerType: String) -> Resolution? {
        let inputs: [UINode.Input]
        let outputType: String
        if let subgraph = ui.subgraphs[node.type] {
            inputs = subgraph.inputs.map { slot in
                UINode.Input(name: slot.name, type: slot.type, link: node.inputs.first { $0.name == slot.name }?.link, widget: nil)
            }
            outputType = subgraph.outputs[safe: slot]?.type ?? node.outputs[safe: slot]?.type ?? "*"
        } else {
            let definition = definitions[classType(node)]
            inputs = orderedInputs(node, definition)
            outputType = node.outputs[safe: slot]?.type ?? definition?.outputs[safe: slot] ?? "*"
        }
        let valid = Self.isValidConnection
        let chosen: UINode.Input?
        if consumerType == "*" || consumerType.isEmpty {
            chosen = inputs[safe: slot] ?? inputs.first
        } else if let same = inputs[safe: slot], valid(same.type, outputType), valid(same.type, consumerType) {
            chosen = same
        } else {
            chosen = inputs.first { $0.type == consumerType } ?? inputs.first { valid($0.type, outputType) && valid($0.type, consumerType) }
        }
        guard let linkID = chosen?.link, let link = scope.graph.links[linkID] else { return nil }
        return resolve(link, in: scope, consumerType: consumerType)
    }

    /// The value an instance gives a subgraph input through its promoted widget, if any.
    func promotedValue(_ instance: UINode, input index: Int) -> JSONValue? { promoted(instance).byInput[index] }

    /// What an instance's `widgets_values` set. Pass 1: the subgraph inputs that reach a widget on
    /// an inner node get one widget each, in input order, and the values fill them in that order.
    /// Pass 2 (files from frontends ≈1.30–1.4x, with `properties.proxyWidgets`): value *i* goes to
    /// the widget `proxyWidgets[i]` names: the input promoted from it, the host input itself
    /// (`-1`), or straight onto the inner widget when no input exists for it.
    func promoted(_ instance: UINode) -> (byInput: [Int: JSONValue], inner: [String: [String: JSONValue]]) {
        guard let subgraph = ui.subgraphs[instance.type] else { return ([:], [:]) }
        let values = instance.widgetsValues ?? []
        var sources: [(input: Int, node: String, widget: String)] = []
        for (offset, input) in subgraph.inputs.enumerated() {
            for linkID in input.linkIDs {
                guard let link = subgraph.links[linkID], let target = subgraph.node(link.targetID),
                    let socket = target.inputs.first(where: { $0.link == linkID }), hasWidget(target, socket.widget ?? socket.name)
                else { continue }
                sources.append((offset, target.id, socket.widget ?? socket.name))
                break
            }
        }
        var byInput: [Int: JSONValue] = [:]
        for (source, value) in zip(sources, values) where !value.isNull { byInput[source.input] = value }
        var inner: [String: [String: JSONValue]] = [:]
        let renamed = ui.renamedNodes[instance.type] ?? [:]
        for (position, entry) in (instance.properties["proxyWidgets"]?.arrayValue ?? []).enumerated() {
            guard let pair = entry.arrayValue, pair.count == 2, let written = pair[0].stringValue ?? pair[0].numberValue.map(\.literal),
                let widget = pair[1].stringValue, !widget.hasPrefix("$$")
            else { continue }
            let value = values[safe: position]
            let node = renamed[written] ?? written
            if let source = sources.first(where: { $0.node == node && $0.widget == widget }) {
                if let value { byInput[source.input] = value }
            } else if node == "-1" {
                if let value, let index = subgraph.inputs.firstIndex(where: { $0.name == widget }) { byInput[index] = value }
            } else if let target = subgraph.node(node), target.type != "PrimitiveNode", hasWidget(target, widget), let value {
                inner[node, default: [:]][widget] = value
            }
        }
        return (byInput, inner)
    }

    func hasWidget(_ node: UINode, _ input: String) -> Bool {
        guard !UIConversion.virtualTypes.contains(node.type), let definition = definitions[classType(node)] else { return false }
        return definition.input(named: input)?.hasWidget ?? false
    }

    /// litegraph's `isValidConnection`: any side `*` or empty, equal, or (case-insensitively)
    /// sharing a member of comma-separated lists.
    static func isValidConnection(_ a: String, _ b: String) -> Bool {
        if a.isEmpty || a == "*" || b.isEmpty || b == "*" || a == b { return true }
        let left = a.lowercased().split(separator: ",").map { $0.trimmingSpaces }
        let right = Set(b.lowercased().split(separator: ",").map { $0.trimmingSpaces })
        return left.contains { right.contains($0) }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
