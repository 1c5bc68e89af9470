import ComfyClient
import ComfyCore
import Foundation
import Processes
import Runner

/// The servers file, and turning `--server` values and jobs' `servers` into servers to use.
enum ServersConfig {
    static let option = OptionSpec.value(
        "servers", name: "file", help: "The servers file (default $XDG_CONFIG_HOME/comfyq/servers.json5, if it exists).")

    /// `$XDG_CONFIG_HOME/comfyq/servers.json5`, else `~/.config/comfyq/servers.json5`.
    static func defaultPath(_ environment: [String: String]) -> String {
        UserFolders.config(environment: environment, home: homeFolder(environment)) + "/servers.json5"
    }

    /// The file given with `--servers` (which must exist), else the default one if it exists.
    static func load(_ arguments: ParsedArguments, _ console: Console) throws -> (file: ServersFile, path: String)? {
        let given = arguments.value("servers")
        let path = given ?? defaultPath(console.environment)
        guard FileManager.default.fileExists(atPath: path) else {
            if given != nil { throw CommandFailure("\(path): no such file") }
            return nil
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CommandFailure("\(path): cannot read the file") }
        let environment = ServersFile.Environment(
            home: console.home, path: console.environment["PATH"],
            directoryExists: { path in
                var isFolder: ObjCBool = false
                return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
            },
            locate: { program, path, cwd in Spawn.locate(program, path: path, cwd: cwd) })
        do {
            return (try ServersFile.load(text: text, path: path, environment: environment), path)
        } catch {
            throw InvalidJobFiles(error: error)
        }
    }

    /// The servers named or given: a name (or an entry's name, for all its instances) from the
    /// servers file, or a URL, which is watched as it is.
    /// `command`: the command whose option gave them (a mistake is then a usage error, exit 64).
    static func resolve(
        _ texts: [String], in loaded: (file: ServersFile, path: String)?, what: String, command: CommandSpec? = nil
    ) throws -> [ServerDefinition] {
        func failure(_ message: String) -> any Error { command.map { UsageError(message, command: $0) } ?? CommandFailure(message) }
        var result: [ServerDefinition] = []
        for text in texts {
            var found: [ServerDefinition] = []
            if ServersFile.isName(text) {
                guard let loaded else {
                    throw failure("\(what) \(text): not a URL, and there is no servers file to name it (\(defaultPath(ProcessInfo.processInfo.environment)))")
                }
                found = loaded.file.servers(matching: text)
                guard !found.isEmpty else {
                    let names = loaded.file.servers.map(\.name).joined(separator: ", ")
                    throw failure("\(what) \(text): no server of that name in \(loaded.path) (servers: \(names))")
                }
            } else {
                guard let url = ComfyAPI.serverURL(text) else {
                    throw failure("\(what) must be a server name from the servers file or an http:// or https:// URL, got '\(text)'")
                }
                let name = ComfyAPI(baseURL: url).name
                found = [loaded?.file.servers.first { $0.url == name } ?? ServerDefinition(name: name, url: name)]
            }
            for definition in found where !result.contains(where: { $0.name == definition.name }) { result.append(definition) }
        }
        return result
    }
}
