import ComfyCLI
import Foundation

let status = await ComfyQ.main(
    arguments: Array(CommandLine.arguments.dropFirst()),
    console: .standard(environment: ProcessInfo.processInfo.environment))
exit(status.rawValue)
