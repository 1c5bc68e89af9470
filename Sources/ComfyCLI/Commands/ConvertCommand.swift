import ComfyCore
import Foundation

/// `comfyq convert WORKFLOW.json [--server NAME|URL | --object-info FILE] [-o OUT]`
enum ConvertCommand {
    static let spec = CommandSpec(
        name: "convert",
        abstract: "Convert a UI-format workflow (as ComfyUI's Save writes it) to the API format comfyq submits.",
        discussion: """
            Uses a server's node definitions (/object_info, cached per ComfyUI version), or a saved
            /object_info with --object-info (offline). Prints the API form, or writes it to OUT. Node
            types the server lacks and values that do not fit a widget are one line each (exit 65).
            The rules follow ComfyUI's frontend (1.58); jobs/README.md lists them.
            """,
        arguments: [ArgumentSpec("workflow", help: "A UI-format workflow file.")],
        options: [
            .value("server", name: "name|url", completion: .servers, help: "The server whose node definitions to use (default: the servers file's first that answers)."),
            .value("object-info", name: "file", help: "A saved /object_info to use instead of a server."),
            .value("output", short: "o", name: "file", help: "Write the API form to FILE instead of printing it."),
            ServerChecks.headerOption,
            ServersConfig.option,
        ],
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        let path = arguments.positionals[0]
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CommandFailure("\(path): \(FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")")
        }
        let json: JSONValue
        do { json = try JSONValue(parsingJSON5: text) } catch {
            let (line, column) = error.location(in: text)
            throw CommandFailure("\(path): line \(line), column \(column): \(error)", exitCode: .dataError)
        }
        guard UIWorkflow.isUIFormat(json) else {
            throw CommandFailure("\(path): already in the API format (a job can use it as it is)", exitCode: .dataError)
        }
        let source = try await definitions(arguments, console)
        let result: UIConversion.Result
        do {
            var conversion = UIConversion(definitions: source.definitions, date: DateParts(Date()))
            conversion.choose = { Int.random(in: 0..<$0) }
            result = try conversion.convert(json: json)
        } catch {
            throw InvalidJobFiles(
                error: JobValidationError(problems: error.problems.map { JobProblem(file: path, location: "", reason: "\($0) (node definitions: \(source.origin))") }))
        }
        for note in result.notes { console.printError("note: \(path): \(note)") }
        let output = result.workflow.json.serialized(pretty: true) + "\n"
        guard let target = arguments.value("output") else {
            console.writeOut(output)
            return .success
        }
        do { try Data(output.utf8).write(to: URL(fileURLWithPath: target), options: .atomic) } catch {
            throw CommandFailure("\(target): cannot write it (\(error.localizedDescription))")
        }
        console.printError("wrote \(target) (\(result.workflow.order.count) nodes; node definitions: \(source.origin))")
        return .success
    }

    /// `--object-info FILE`, else the server's (`--server`, else the servers file's first that answers).
    static func definitions(_ arguments: ParsedArguments, _ console: Console) async throws -> NodeDefinitionsSource {
        if let file = arguments.value("object-info") {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CommandFailure("\(file): \(FileManager.default.fileExists(atPath: file) ? "cannot read it" : "no such file")")
            }
            do { return try NodeDefinitionsSource(savedObjectInfo: text, path: file) } catch {
                throw CommandFailure(error.description, exitCode: .dataError)
            }
        }
        let fetched = try await ServerChecks.fetch(arguments, jobPaths: [], command: spec, console: console)
        guard let source = fetched.forConversion else {
            let tried = fetched.failed.map { "\($0.server.name): \($0.reason)" }.joined(separator: "; ")
            throw CommandFailure(
                tried.isEmpty
                    ? "converting needs node definitions: give --server NAME|URL or --object-info FILE (a saved /object_info)"
                    : "no server answered and none has cached node definitions (\(tried)); give --object-info FILE")
        }
        return source
    }
}
