import ComfyCore
import Testing

@Suite struct JobGridTests {
    /// Items as a matrix job expands them: matrix axes in order, then the seed.
    static func items(_ rows: [[(String, JSONValue)]]) -> [JobGrid.Item] {
        rows.enumerated().map { index, pairs in
            var parameters = JSONObject()
            for (key, value) in pairs { parameters[key] = value }
            return JobGrid.Item(index: index, parameters: parameters)
        }
    }

    @Test func theLastMatrixAxisGoesAcrossAndSeedsGoDown() {
        var rows: [[(String, JSONValue)]] = []
        for sampler in ["euler", "dpmpp"] {
            for cfg in [5, 7, 9] {
                for seed in [1, 2] { rows.append([("sampler", .string(sampler)), ("cfg", .int(cfg)), ("seed", .int(seed)), ("steps", 20)]) }
            }
        }
        let grid = JobGrid(items: Self.items(rows), matrixAxes: ["sampler", "cfg"])
        #expect(grid.axes == ["sampler", "seed", "cfg"])  // steps does not vary: no axis
        #expect(grid.across == "cfg")
        #expect(grid.down == ["sampler", "seed"])
        #expect(grid.columns == ["5", "7", "9"])
        #expect(grid.rows == ["euler · 1", "euler · 2", "dpmpp · 1", "dpmpp · 2"])
        #expect(grid.cells[0] == [[0], [2], [4]])
        #expect(grid.cells[3] == [[7], [9], [11]])
        #expect(grid.choices.map(\.axis) == ["sampler"])
    }

    @Test func withoutKnownMatrixAxesTheLastVaryingParameterGoesAcross() {
        let grid = JobGrid(items: Self.items([[("a", 1), ("b", 1)], [("a", 1), ("b", 2)], [("a", 2), ("b", 1)], [("a", 2), ("b", 2)]]))
        #expect(grid.across == "b" && grid.down == ["a"])
        #expect(grid.cells == [[[0], [1]], [[2], [3]]])
        #expect(grid.choices.isEmpty)
    }

    @Test func fixingAnOuterAxisTakesItOutOfTheRows() {
        var rows: [[(String, JSONValue)]] = []
        for model in ["sdxl", "flux"] {
            for sampler in ["euler", "dpmpp"] {
                for cfg in [5, 7] { rows.append([("model", .string(model)), ("sampler", .string(sampler)), ("cfg", .int(cfg))]) }
            }
        }
        let all = JobGrid(items: Self.items(rows), matrixAxes: ["model", "sampler", "cfg"])
        #expect(all.rows == ["sdxl · euler", "sdxl · dpmpp", "flux · euler", "flux · dpmpp"])
        #expect(all.choices.map(\.axis) == ["model"] && all.choices[0].values == ["sdxl", "flux"])
        let flux = JobGrid(items: Self.items(rows), matrixAxes: ["model", "sampler", "cfg"], filter: ["model": "flux"])
        #expect(flux.down == ["sampler"])
        #expect(flux.rows == ["euler", "dpmpp"])
        #expect(flux.cells == [[[4], [5]], [[6], [7]]])
        // A filter on an axis that is not an outer one is ignored.
        #expect(JobGrid(items: Self.items(rows), matrixAxes: ["model", "sampler", "cfg"], filter: ["cfg": "5"]) == all)
    }

    @Test func repeatsOfTheSameParametersShareACell() {
        let grid = JobGrid(items: Self.items([[("cfg", 5)], [("cfg", 5)], [("cfg", 7)]]))
        #expect(grid.axes == ["cfg"] && grid.rows == [""])
        #expect(grid.cells == [[[0, 1], [2]]])
        #expect(JobGrid(items: []).cells.isEmpty)
    }

    /// The viewer's keys: ← → in reading order (on to the next row), ↑ ↓ to the same column of the
    /// row above or below (skipping empty cells, keeping the place within a cell), Home and End.
    @Test(arguments: [
        // from: left, right, up, down (grid: steps 2, 3, 4 down × cfg 5, 7 across; items 0 1 / 2 3 / 4 5)
        (0, JobGrid.Moves(left: nil, right: 1, up: nil, down: 2, first: 0, last: 5)),
        (1, JobGrid.Moves(left: 0, right: 2, up: nil, down: 3, first: 0, last: 5)),
        (3, JobGrid.Moves(left: 2, right: 4, up: 1, down: 5, first: 0, last: 5)),
        (5, JobGrid.Moves(left: 4, right: nil, up: 3, down: nil, first: 0, last: 5)),
    ])
    func theViewersKeysMoveInGridOrder(_ from: Int, _ expected: JobGrid.Moves) {
        var rows: [[(String, JSONValue)]] = []
        for steps in [2, 3, 4] { for cfg in [5, 7] { rows.append([("steps", .int(steps)), ("cfg", .int(cfg))]) } }
        let grid = JobGrid(items: Self.items(rows), matrixAxes: ["steps", "cfg"])
        #expect(grid.order == [0, 1, 2, 3, 4, 5])
        #expect(grid.moves(from: from) == expected)
        #expect(grid.moves(from: 99) == nil, "not in the grid")
    }

    /// Several items in one cell (seeds not an axis): ↓ keeps the place within the cell.
    @Test func upAndDownKeepThePlaceWithinACell() {
        var rows: [[(String, JSONValue)]] = []
        for cfg in [5, 7] { for _ in 0..<2 { rows.append([("cfg", .int(cfg))]) } }
        // One axis: cfg across, a single row; items 0, 1 in the first cell, 2, 3 in the second.
        let grid = JobGrid(items: Self.items(rows), matrixAxes: ["cfg"])
        #expect(grid.cells == [[[0, 1], [2, 3]]])
        #expect(grid.moves(from: 1)?.right == 2 && grid.moves(from: 1)?.down == nil)
    }
}
