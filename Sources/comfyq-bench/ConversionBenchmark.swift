import ComfyCore
import Foundation

/// UI-format workflows and pre-flight: parsing a server's `/object_info` into node definitions,
/// converting the largest of the frontend's pairs, and checking a 10,000-item sweep against two
/// servers.
enum ConversionBenchmark {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Tests/Fixtures/ui-api").standardized

    static func run() {
        guard let objectInfo = FileManager.default.contents(atPath: fixtures.appendingPathComponent("object_info.json").path) else {
            print("conversion: Tests/Fixtures/ui-api/object_info.json not found; skipped")
            return
        }
        let bytes = Array(objectInfo)
        var definitions = NodeDefinitions([])
        let parse = measure(rounds: 15) {
            do { definitions = try NodeDefinitions(objectInfo: JSONValue(parsing: bytes)) } catch { fatalError("object_info.json: \(error)") }
        }
        let foundation = measure(rounds: 15) { _ = try? JSONSerialization.jsonObject(with: objectInfo) }
        print(
            "conversion: /object_info of \(format(Double(bytes.count) / 1e3, 0)) KB (\(definitions.count) node types) parsed into definitions in \(format(parse * 1e3, 1)) ms  [target ≤ 20 ms]; Foundation's JSONSerialization alone: \(format(foundation * 1e3, 1)) ms (\(format(foundation / parse, 1))× ours)"
        )

        let names = (try? FileManager.default.contentsOfDirectory(atPath: fixtures.path))?.filter { $0.hasSuffix(".ui.json") } ?? []
        let sized = names.map { ($0, (try? Data(contentsOf: fixtures.appendingPathComponent($0)))?.count ?? 0) }
        guard let (largest, size) = sized.max(by: { $0.1 < $1.1 }),
            let text = try? String(contentsOf: fixtures.appendingPathComponent(largest), encoding: .utf8),
            let json = try? JSONValue(parsing: text)
        else { return }
        let conversion = UIConversion(definitions: definitions, choose: { _ in 0 })
        var nodes = 0
        let convert = measure(rounds: 25) {
            do { nodes = try conversion.convert(json: json).workflow.order.count } catch { fatalError("\(largest): \(error)") }
        }
        print("conversion: \(largest) (\(format(Double(size) / 1e3, 0)) KB, \(nodes) API nodes) converted in \(format(convert * 1e3, 2)) ms  [target ≤ 5 ms]")

        // Pre-flight of a 10,000-item sweep (samplers × 2 checkpoints, one missing) against two
        // servers, on the largest pair with a sampler and a checkpoint loader.
        var found: (Workflow, WorkflowNode, WorkflowNode)?
        for (name, _) in sized.sorted(by: { $0.1 > $1.1 }) {
            guard let text = try? String(contentsOf: fixtures.appendingPathComponent(name), encoding: .utf8),
                let workflow = try? conversion.convert(json: JSONValue(parsing: text)).workflow,
                let sampler = workflow.orderedNodes.first(where: { definitions[$0.classType]?.input(named: "sampler_name") != nil }),
                let loader = workflow.orderedNodes.first(where: { $0.inputs["ckpt_name"] != nil })
            else { continue }
            found = (workflow, sampler, loader)
            break
        }
        guard let (workflow, sampler, loader) = found else { return }
        let samplers = definitions[sampler.classType]?.optionSet("sampler_name").sorted() ?? []
        let addresses = [
            "s": ParameterAddress(nodeID: sampler.id, input: "sampler_name", written: "s"),
            "c": ParameterAddress(nodeID: loader.id, input: "ckpt_name", written: "c"),
        ]
        var items: [PreflightJob.Item] = []
        for index in 0..<10_000 {
            let checkpoint: JSONValue = index % 2 == 0 ? loader.inputs["ckpt_name"]! : "missing.safetensors"
            items.append(PreflightJob.Item(index: index, parameters: ["s": .string(samplers[index % min(50, samplers.count)]), "c": checkpoint]))
        }
        let job = PreflightJob(label: "sweep", workflow: workflow, addresses: addresses, items: items)
        var lines: [String] = []
        let check = measure(rounds: 7) {
            let report = PreflightReport(jobs: [job], servers: [("gpu0", definitions), ("gpu1", definitions)])
            lines = (report.errors + report.notes).map(\.text)
        }
        print("conversion: pre-flight of 10,000 items against 2 servers: \(format(check * 1e3, 1)) ms, \(lines.count) distinct problem\(lines.count == 1 ? "" : "s"):")
        for line in lines { print("  \(line)") }
    }
}
