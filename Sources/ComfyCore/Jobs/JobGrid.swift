/// A job laid out as a grid, as its page and contact sheet show it: the axes are the parameters
/// whose values differ between items (in the job's order); the last matrix axis is laid across
/// (the last axis when the matrix is not known), the others down, one row per combination, so
/// seeds, `zip` and `repeat` become further rows. With more than two axes, the outer ones can be
/// fixed to one value each (`filter`), which takes them out of the rows.
public struct JobGrid: Sendable, Equatable {
    public struct Item: Sendable, Equatable {
        public var index: Int
        public var parameters: JSONObject
        public init(index: Int, parameters: JSONObject) {
            self.index = index
            self.parameters = parameters
        }
    }

    /// Every axis, in the job's parameter order.
    public private(set) var axes: [String] = []
    public private(set) var across: String?
    /// The axes that make the rows (the outer axes that `filter` fixed are left out).
    public private(set) var down: [String] = []
    /// Axes that may be fixed to one value, with their values (empty with two axes or fewer).
    public private(set) var choices: [(axis: String, values: [String])] = []
    public private(set) var columns: [String] = []
    public private(set) var rows: [String] = []
    /// `cells[row][column]`: the item indexes there (several when seeds or repeats are not an axis).
    public private(set) var cells: [[[Int]]] = []

    public init(items: [Item], matrixAxes: [String] = [], filter: [String: String] = [:]) {
        guard let first = items.first else { return }
        axes = first.parameters.keys.filter { key in items.contains { $0.parameters[key] != first.parameters[key] } }
        // The across axis goes last; the rest keep their order (matrix axes first, as the job has them).
        if let chosen = matrixAxes.last(where: axes.contains), let at = axes.firstIndex(of: chosen) {
            axes.remove(at: at)
            axes.append(chosen)
        }
        across = axes.last
        let outer = axes.count > 2 ? Array(axes.dropLast(2)) : []
        for axis in outer {
            var values: [String] = []
            for item in items {
                let value = Self.shown(item.parameters[axis])
                if !values.contains(value) { values.append(value) }
            }
            choices.append((axis, values))
        }
        let fixed = filter.filter { outer.contains($0.key) }
        down = axes.dropLast().filter { fixed[$0] == nil }
        var rowIndex: [String: Int] = [:]
        var columnIndex: [String: Int] = [:]
        var placed: [(row: Int, column: Int, index: Int)] = []
        for item in items where fixed.allSatisfy({ Self.shown(item.parameters[$0.key]) == $0.value }) {
            let column = across.map { Self.shown(item.parameters[$0]) } ?? ""
            let row = down.map { Self.shown(item.parameters[$0]) }.joined(separator: " · ")
            let r = rowIndex[row] ?? { rows.append(row); rowIndex[row] = rows.count - 1; return rows.count - 1 }()
            let c = columnIndex[column] ?? { columns.append(column); columnIndex[column] = columns.count - 1; return columns.count - 1 }()
            placed.append((r, c, item.index))
        }
        cells = Array(repeating: Array(repeating: [], count: columns.count), count: rows.count)
        for (row, column, index) in placed { cells[row][column].append(index) }
    }

    /// A parameter's value as a header shows it: an input file by its name, text as it is.
    public static func shown(_ value: JSONValue?) -> String {
        guard let value else { return "" }
        if let file = InputFile(json: value) { return file.stem }
        return value.stringValue ?? value.serialized()
    }

    public static func == (a: JobGrid, b: JobGrid) -> Bool {
        a.axes == b.axes && a.down == b.down && a.columns == b.columns && a.rows == b.rows && a.cells == b.cells
            && a.choices.map(\.axis) == b.choices.map(\.axis) && a.choices.map(\.values) == b.choices.map(\.values)
    }
}

extension JobGrid {
    /// Where the viewer's keys go from an item: ← → through the grid in reading order (a row's
    /// cells left to right, then the next row), ↑ ↓ to the same column of the row above or below
    /// (the same place in its cell when it has one), Home and End to the first and last item.
    public struct Moves: Sendable, Equatable {
        public var left: Int?
        public var right: Int?
        public var up: Int?
        public var down: Int?
        public var first: Int?
        public var last: Int?

        public init(left: Int? = nil, right: Int? = nil, up: Int? = nil, down: Int? = nil, first: Int? = nil, last: Int? = nil) {
            (self.left, self.right, self.up, self.down, self.first, self.last) = (left, right, up, down, first, last)
        }
    }

    /// The items in reading order.
    public var order: [Int] { cells.flatMap { $0.flatMap { $0 } } }

    public func moves(from index: Int) -> Moves? {
        let order = order
        guard let at = order.firstIndex(of: index) else { return nil }
        var moves = Moves(first: order.first, last: order.last)
        moves.left = at > 0 ? order[at - 1] : nil
        moves.right = at + 1 < order.count ? order[at + 1] : nil
        for (row, cellsOfRow) in cells.enumerated() {
            for (column, cell) in cellsOfRow.enumerated() {
                guard let place = cell.firstIndex(of: index) else { continue }
                func vertical(_ step: Int) -> Int? {
                    var other = row + step
                    while cells.indices.contains(other) {
                        let target = cells[other][column]
                        if !target.isEmpty { return target[min(place, target.count - 1)] }
                        other += step
                    }
                    return nil
                }
                moves.up = vertical(-1)
                moves.down = vertical(1)
            }
        }
        return moves
    }
}
