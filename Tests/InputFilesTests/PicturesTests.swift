@testable import InputFiles
import Testing

/// The bitmap font and the contact sheet: what is drawn can be read back.
@Suite struct PicturesTests {
    @Test func theFontHasOneDistinctGlyphForEachPrintableCharacter() {
        let glyphs = (32...126).map { code in
            Array(BitmapFont.columns(Character(Unicode.Scalar(UInt8(code))))).map(Int.init)
        }
        #expect(glyphs.count == 95)
        #expect(Set(glyphs.map { $0.description }).count == 95, "two characters share a glyph")
        #expect(BitmapFont.columns("é") == BitmapFont.columns("?"))
    }

    @Test(arguments: [
        ("seed 42", 1), ("cfg 7.5 euler_ancestral", 2), ("A-Z: ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1),
        ("0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", 3), ("a market street in the rain", 2),
    ])
    func drawnTextReadsBack(text: String, scale: Int) {
        let background = PNGImage.Colour(40, 60, 80)
        let ink = PNGImage.Colour(255, 255, 255)
        var image = PNGImage(width: BitmapFont.width(of: text, scale: scale) + 20, height: 30 * scale, colour: background)
        BitmapFont.draw(text, into: &image, x: 5, y: 4, scale: scale, colour: ink)
        #expect(BitmapFont.read(image, x: 5, y: 4, scale: scale) { $0 == ink } == text)
    }

    @Test func textPastTheEdgeIsClipped() {
        var image = PNGImage(width: 20, height: 10, colour: PNGImage.Colour(0, 0, 0))
        BitmapFont.draw("abcdefgh", into: &image, x: 2, y: 1, scale: 1, colour: PNGImage.Colour(255, 255, 255))
        #expect(BitmapFont.read(image, x: 2, y: 1, scale: 1) { $0.red == 255 } == "abc")
    }

    @Test func aContactSheetHasTheGridsShapeAndItsLabels() throws {
        let red = PNGImage(width: 64, height: 32, colour: PNGImage.Colour(200, 0, 0))
        let sheet = ContactSheet(
            title: "grid: 3 of 4 done", caption: "across: cfg", columns: ["5", "7"], rows: ["euler", "dpmpp"],
            cells: [[.image(red), .image(red)], [.image(red), .text("failed")]]
        ).render(cellSize: 48, scale: 1, gap: 4)
        let decoded = try PNGImage(decoding: sheet.encoded())
        let roundTrip = decoded.width == sheet.width && decoded.height == sheet.height && decoded.rgba == sheet.rgba
        #expect(roundTrip)
        let line = BitmapFont.lineHeight
        let isInk: (PNGImage.Colour) -> Bool = { $0 == PNGImage.Colour(0xE8, 0xE8, 0xEC) }
        let isMuted: (PNGImage.Colour) -> Bool = { $0 == PNGImage.Colour(0x9B, 0x9B, 0xA6) }
        #expect(BitmapFont.read(sheet, x: 4, y: 4, scale: 1, ink: isInk) == "grid: 3 of 4 done")
        #expect(BitmapFont.read(sheet, x: 4, y: 4 + line + 4, scale: 1, ink: isMuted) == "across: cfg")
        let top = 4 + line + 4 + line + 4 + line + 4
        let rowHeader = sheet.width - 4 - 2 * (48 + 4)
        // Each image cell: the picture scaled into it (64 × 32 → 48 × 24), centred.
        for (row, column) in [(0, 0), (0, 1), (1, 0)] {
            let x = rowHeader + 4 + column * 52 + 24
            let y = top + row * 52 + 24
            #expect(sheet.colour(x: x, y: y) == PNGImage.Colour(200, 0, 0), "cell \(row), \(column)")
        }
        #expect(sheet.colour(x: rowHeader + 4 + 52 + 24, y: top + 52 + 2) != PNGImage.Colour(200, 0, 0))
        #expect(sheet.height == top + 2 * 52)
    }
}

extension PicturesTests {
    @Test func aSmallPictureIsEnlargedByAWholeFactor() {
        let small = PNGImage(width: 2, height: 1, rgba: [1, 2, 3, 255, 4, 5, 6, 255], hadAlpha: false)
        let big = ContactSheet.enlarged(small, toFit: 7)
        #expect(big.width == 6 && big.height == 3)
        #expect(big.colour(x: 2, y: 2) == PNGImage.Colour(1, 2, 3) && big.colour(x: 3, y: 0) == PNGImage.Colour(4, 5, 6))
        let same = ContactSheet.enlarged(small, toFit: 3)
        #expect(same.width == 2)
    }
}
