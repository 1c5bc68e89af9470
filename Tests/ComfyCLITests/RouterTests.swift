import ComfyCLI
import Testing

@Suite struct RouterTests {
    @Test(arguments: [[], ["--help"], ["-h"], ["help"]])
    func overviewListsTheCommands(arguments: [String]) async {
        let capture = Capture()
        let status = await ComfyQ.main(arguments: arguments, console: capture.console)
        #expect(status == .success)
        #expect(capture.stdout.hasPrefix("OVERVIEW: "))
        #expect(capture.stdout.contains("\n  replay "))
        #expect(capture.stderr.isEmpty)
    }

    @Test(arguments: [["replay", "--help"], ["help", "replay"], ["replay", "-h"]])
    func commandHelpIsGeneratedFromItsOptions(arguments: [String]) async {
        let capture = Capture()
        let status = await ComfyQ.main(arguments: arguments, console: capture.console)
        #expect(status == .success)
        #expect(capture.stdout.contains("OVERVIEW: Replay a recorded ComfyUI session"))
        #expect(capture.stdout.contains("USAGE: comfyq replay <trace> [--json]"))
        #expect(capture.stdout.contains("ARGUMENTS:\n  <trace>"))
        #expect(capture.stdout.contains("OPTIONS:\n  --json"))
        #expect(capture.stdout.contains("-h, --help"))
    }

    @Test func version() async {
        let run = await comfyq("--version")
        #expect(run.status == .success)
        #expect(run.stdout == "comfyq \(ComfyQ.version) (built from source)\n")  // scripts/package.sh stamps the commit and date
        let verbose = await comfyq("--version", "--verbose")
        for library in ["Lua: Lua 5.4", "SQLite: 3.", "libpq: ", "OpenSSL: OpenSSL 3", "zlib: 1.", "libcurl: libcurl/"] {
            #expect(verbose.stdout.contains("\n  \(library)"), "\(verbose.stdout)")
        }
    }

    @Test(arguments: [
        (["bogus"], "Error: unknown command 'bogus'\nUsage: comfyq <command> [options]"),
        (["--bogus"], "Error: unknown option '--bogus'"),
        (["replay"], "Error: missing expected argument '<trace>'\nUsage: comfyq replay <trace> [--json]\n  See 'comfyq replay --help'"),
        (["replay", "a", "b"], "Error: unexpected argument 'b'"),
        (["replay", "a", "--frobnicate"], "Error: unknown option '--frobnicate'"),
        (["replay", "a", "--json=yes"], "Error: option '--json' takes no value"),
        (["help", "nope"], "Error: unknown command 'nope'"),
        (["run", "--order", "fifo"], "Error: --order must be models or strict, got 'fifo'"),
        (["run", "--max-defer", "soon"], "Error: --max-defer must be a duration such as 10m or 90s, got 'soon'"),
    ])
    func usageErrorsExit64OnStderr(arguments: [String], message: String) async {
        let capture = Capture()
        let status = await ComfyQ.main(arguments: arguments, console: capture.console)
        #expect(status == .usage)
        #expect(capture.stdout.isEmpty)
        #expect(capture.stderr.hasPrefix(message), "\(capture.stderr)")
    }
}
