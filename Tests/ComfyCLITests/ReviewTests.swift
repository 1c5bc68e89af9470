import ComfyCLI
import ComfyCore
import Foundation
import TestSupport
import Testing

/// The morning review from the command line: ratings in the queue (both backends), shown by
/// `status --json` and the report; follow-ups of the starred pictures.
@Suite(.serialized) struct ReviewTests {
    static let workflows = Paths.packageRoot.appendingPathComponent("jobs/workflows").path

    /// A night of three small pictures, run on the simulator, in `home`'s queue (or `db`).
    static func night(_ home: CLIHome, db: String? = nil) async throws {
        let run = try await runBinary(
            ["run", workflows + "/txt2img.json", "--name", "night", "--seeds", "3", "--set", "KSampler.steps=2", "--set", "Empty Latent Image.width=64",
             "--set", "Empty Latent Image.height=64", "--output", home.path("out"), "--simulate"] + (db.map { ["--db", $0] } ?? []),
            environment: home.environment)
        #expect(run.status == .success, "\(run.stderr)")
    }

    static func ratings(_ home: CLIHome, job: String = "night", db: String? = nil) async throws -> [String?] {
        let status = try await runBinary(["status", job, "--json"] + (db.map { ["--db", $0] } ?? []), environment: home.environment)
        let json = try JSONValue(parsing: status.stdout)
        return (json["items"]?.arrayValue ?? []).map { $0["rating"]?.stringValue }
    }

    enum Backend: String, CaseIterable, Sendable { case sqlite, postgres }

    @Test(arguments: Backend.allCases)
    func starRejectAndUnrateAreKeptAndShown(_ backend: Backend) async throws {
        if backend == .postgres, !PostgresServer.available { return }  // (the PostgreSQL suites say it is missing)
        let home = try CLIHome("comfyq-review")
        let db = backend == .postgres ? try PostgresServer.database() : nil
        let dbArguments = db.map { ["--db", $0] } ?? []
        try await Self.night(home, db: db)
        #expect(try await runBinary(["star", "night/0,2"] + dbArguments, environment: home.environment).stdout == "starred 2 pictures\n")
        #expect(try await runBinary(["reject", "night/1"] + dbArguments, environment: home.environment).stdout == "rejected 1 picture\n")
        #expect(try await Self.ratings(home, db: db) == ["starred", "rejected", "starred"])
        #expect(try await runBinary(["unrate", "night/2"] + dbArguments, environment: home.environment).status == .success)
        #expect(try await Self.ratings(home, db: db) == ["starred", "rejected", nil])
        // The report shows them.
        let report = try await runBinary(["report", "night", "-o", home.path("report")] + dbArguments, environment: home.environment)
        #expect(report.status == .success, "\(report.stderr)")
        let page = try String(contentsOfFile: home.path("report/index.html"), encoding: .utf8)
        #expect(page.contains(#"data-item="0" class="starred" data-rating="starred""#) && page.contains("★"), "\(page.prefix(3000))")
        #expect(page.contains(#"data-item="1" class="rejected" data-rating="rejected""#))
    }

    @Test func wrongReferencesAreOneLineAndRateNothing() async throws {
        let home = try CLIHome("comfyq-review-bad")
        try await Self.night(home)
        let cases: [([String], ExitCode, String)] = [
            (["star", "night"], .usage, "night: give JOB/INDEX (or JOB/3,7,12)"),
            (["star", "night/x"], .usage, "night/x: the item must be a number"),
            (["star", "night/0", "night/7"], .failure, "night/7: no such item (the job has 3, 0 to 2)"),
            (["star", "nobody/1"], .failure, "nobody"),
        ]
        for (arguments, status, says) in cases {
            let run = try await runBinary(arguments, environment: home.environment)
            #expect(run.status == status && run.stderr.contains(says), "\(arguments): \(run.stderr)")
        }
        #expect(try await Self.ratings(home) == [nil, nil, nil], "a typo rates nothing, not even the good references")
        // Only pictures are rated: a pending item is named and left alone.
        let pending = try await runBinary(
            ["add", Self.workflows + "/txt2img.json", "--name", "later", "--seeds", "2", "--output", home.path("later"), "--no-preflight"],
            environment: home.environment)
        #expect(pending.status == .success, "\(pending.stderr)")
        let star = try await runBinary(["star", "later/1"], environment: home.environment)
        #expect(star.status == .failure && star.stderr.contains("not done, left alone: later/1"), "\(star.stderr)")
    }

    /// `add FOLLOWUP --from night --starred`: one item per starred picture, with its seed and
    /// swept values, and the picture itself as the follow-up's input; it runs, and says where
    /// it came from.
    @Test func aFollowUpOfTheStarredPicturesRunsOnThem() async throws {
        let home = try CLIHome("comfyq-review-followup")
        try await Self.night(home)
        #expect(try await runBinary(["star", "night/0,2"], environment: home.environment).status == .success)
        let followUp = try home.write(
            "keepers.json",
            """
            {name: "keepers", workflow: "\(Self.workflows)/img2img.json",
             set: {"Load Image.image": {file: "{from.output}"}, "KSampler.denoise": 0.5}, output: {folder: "\(home.path("keepers"))"}}
            """)
        let none = try await runBinary(["add", followUp, "--from", "night", "--items", "9"], environment: home.environment)
        #expect(none.status == .failure && none.stderr.contains("--from night: no item 9"), "\(none.stderr)")
        let add = try await runBinary(["add", followUp, "--from", "night", "--starred", "--no-preflight"], environment: home.environment)
        #expect(add.status == .success, "\(add.stderr)")
        #expect(add.stderr.contains("note: Empty Latent Image.width is not carried: the follow-up's graph has no such input"), "\(add.stderr)")
        let run = try await runBinary(["run", "--simulate"], environment: home.environment)
        #expect(run.status == .success, "\(run.stderr)")
        let status = try JSONValue(parsing: try await runBinary(["status", "keepers", "--json"], environment: home.environment).stdout)
        let job = status["jobs"]?.arrayValue?.first { $0["name"] == "keepers" }
        #expect(job?["counts"]?["done"] == 2 && job?["from"] == ["job": "night", "items": [0, 2]], "\(status.serialized())")
        for (index, source) in [(0, 0), (1, 2)] {
            let sidecar = try JSONValue(parsing: try String(contentsOfFile: home.path("keepers/keepers_\(index).json"), encoding: .utf8))
            #expect(sidecar["parameters"]?["3.seed"] == .int(source + 1), "\(sidecar.serialized())")
            #expect(sidecar["parameters"]?["KSampler.steps"] == 2)
            let inputs = sidecar["inputs"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []
            #expect(inputs == [home.path("out/night_\(source).png")], "\(sidecar.serialized())")
        }
    }
}
