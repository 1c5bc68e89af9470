import ComfyUIExtension
import Foundation

/// `comfyq comfyui install [COMFYUI_DIR] [--serve URL] [--uninstall]`
enum ComfyUICommand {
    static let spec = CommandSpec(
        name: "comfyui",
        abstract: "Install comfyq's extension into ComfyUI: queue the workflow on screen as a batch, a comfyq sidebar.",
        discussion: """
            install writes the extension into COMFYUI_DIR/custom_nodes/comfyq (default: the current
            folder when it is ComfyUI's); restart ComfyUI to load it. The page then has "Queue as
            comfyq batch…" (the Workflow menu, Alt+Shift+Q) and a comfyq tab in its sidebar, which
            talk to comfyq serve at --serve (written to the extension's comfyq.json). Start serve
            with --allow-origin set to the address you open ComfyUI at, so that page, and no other,
            may add jobs. --uninstall removes the folder (only if it is comfyq's extension).
            """,
        arguments: [
            ArgumentSpec("action", help: "install", completion: .words(["install"])),
            ArgumentSpec("comfyui-dir", help: "ComfyUI's folder (the one with custom_nodes/).", optional: true),
        ],
        options: [
            .value("serve", name: "url", help: "Where comfyq serve listens (default http://127.0.0.1:8190)."),
            .flag("uninstall", help: "Remove the extension instead."),
        ],
        run: run)

    static func run(_ arguments: ParsedArguments, _ console: Console) async throws -> ExitCode {
        guard arguments.positionals.first == "install" else {
            throw UsageError("the action is install, got '\(arguments.positionals.first ?? "")'", command: spec)
        }
        let directory = arguments.positionals.count > 1 ? arguments.positionals[1] : FileManager.default.currentDirectoryPath
        let comfyUI = URL(fileURLWithPath: directory).standardizedFileURL.path
        do {
            if arguments.flag("uninstall") {
                if let removed = try ComfyUIExtension.uninstall(comfyUI: comfyUI) {
                    console.print("removed \(removed) (restart ComfyUI to unload it)")
                } else {
                    console.print("\(ComfyUIExtension.folder(in: comfyUI)): not installed, nothing to remove")
                }
                return .success
            }
            let serve = (arguments.value("serve") ?? "http://127.0.0.1:8190").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            guard let url = URL(string: serve), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw UsageError("--serve must be a URL such as http://127.0.0.1:8190, got '\(serve)'", command: spec)
            }
            let folder = try ComfyUIExtension.install(comfyUI: comfyUI, serve: serve, version: ComfyQ.version)
            console.print("installed comfyq's extension in \(folder) (restart ComfyUI to load it)")
            console.print("it reaches comfyq serve at \(serve): run `comfyq serve --allow-origin ORIGIN`, ORIGIN being the address you open ComfyUI at (such as http://127.0.0.1:8188)")
            return .success
        } catch let failure as ComfyUIExtension.Failure {
            throw CommandFailure(failure.description)
        }
    }
}
