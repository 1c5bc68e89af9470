import Foundation
@testable import InputFiles
import TestSupport
import Testing

/// Contact sheets of any size: no side over `maxSide`, wide grids wrapped into strips, tall ones
/// continued on numbered sheets, written band by band.
@Suite struct ContactSheetSplitTests {
    static func sheet(columns: Int, rows: Int) -> ContactSheet {
        ContactSheet(title: "big", caption: "across: seed", columns: (0..<columns).map(String.init), rows: (0..<rows).map { rows == 1 ? "" : "r\($0)" }) { _, _ in
            .text("pending")
        }
    }

    @Test(arguments: [
        // (columns, rows): strips of at most 40 columns, sheets of at most 16,384 px.
        (1, 1), (40, 1), (41, 1), (1000, 1), (1, 1000), (100, 100), (15_000, 1),
    ])
    func noSideIsOverTheLimitAndEveryCellIsDrawnOnce(columns: Int, rows: Int) {
        let sheet = Self.sheet(columns: columns, rows: rows)
        let sheets = sheet.sheets()
        #expect(sheet.width <= sheet.maxSide)
        var drawn: [Int: Int] = [:]
        for bands in sheets {
            #expect(bands.reduce(0) { $0 + sheet.height(of: $1) } <= sheet.maxSide)
            #expect(bands.first == .title(continued: bands != sheets.first))
            for band in bands {
                guard case .row(let row, let strip) = band else { continue }
                for column in (strip * sheet.maxColumns)..<min((strip + 1) * sheet.maxColumns, columns) { drawn[row * columns + column, default: 0] += 1 }
            }
        }
        #expect(drawn.count == columns * rows && drawn.values.allSatisfy { $0 == 1 })
        // A strip's rows come under its headers, on every sheet.
        for bands in sheets {
            let firstRow = bands.firstIndex { if case .row = $0 { true } else { false } }
            if let firstRow { #expect(bands[firstRow - 1] != .title(continued: false) || firstRow == 0) }
            if let firstRow, case .row(_, let strip) = bands[firstRow] { #expect(bands[firstRow - 1] == .header(strip: strip)) }
        }
    }

    @Test func aTallGridIsWrittenAsNumberedSheetsThatDecode() throws {
        let folder = TestFolder.root.appendingPathComponent("sheets-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var sheet = Self.sheet(columns: 3, rows: 30)
        sheet.cellSize = 32
        sheet.maxSide = 400
        let paths = try sheet.write(to: folder.appendingPathComponent("contact-sheet.png").path)
        let expected = sheet.sheets().count
        #expect(expected > 1 && paths.count == expected)
        #expect(paths.map { ($0 as NSString).lastPathComponent } == ["contact-sheet.png"] + (2...expected).map { "contact-sheet-\($0).png" })
        for path in paths {
            let image = try PNGImage(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
            #expect(image.width == sheet.width && image.height <= 400)
        }
        #expect(!FileManager.default.fileExists(atPath: paths[0] + ".partial"))
    }

    @Test func theStreamedPictureIsTheRenderedOne() throws {
        let folder = TestFolder.root.appendingPathComponent("sheets-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let red = PNGImage(width: 64, height: 32, colour: PNGImage.Colour(200, 0, 0))
        var sheet = ContactSheet(title: "grid", caption: "across: cfg", columns: ["5", "7", "9"], rows: ["euler", "dpmpp"]) { row, column in
            row == 1 && column == 2 ? .text("failed") : .image(red)
        }
        sheet.cellSize = 48
        let rendered = sheet.render()
        let path = folder.appendingPathComponent("one.png").path
        #expect(try sheet.write(to: path) == [path])
        let streamed = try PNGImage(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(streamed.width == rendered.width && streamed.height == rendered.height)
        #expect(streamed.rgba == rendered.rgba)
    }

    @Test(arguments: [
        ("/out/contact-sheet.png", 1, "/out/contact-sheet.png"), ("/out/contact-sheet.png", 2, "/out/contact-sheet-2.png"),
        ("sheet", 3, "sheet-3"), ("/a.b/sheet", 2, "/a.b/sheet-2"), ("/out/.png", 2, "/out/.png-2"),
    ])
    func sheetsAreNumberedBeforeTheExtension(path: String, number: Int, expected: String) {
        #expect(ContactSheet.sheetPath(path, number: number) == expected)
    }
}
