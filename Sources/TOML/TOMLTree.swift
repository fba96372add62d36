/// The tables of a document as it is read, and TOML 1.0.0's rules for defining each once.
///
/// - `[a.b]` defines the table `a.b`, creating `a` as needed; `a` may still be defined by its
///   own header later (a super-table after its sub-table), `a.b` never again.
/// - `x.y = 1` in a section creates and defines `x` there; that section may add more keys to
///   `x`, but no header may define `x`, and no other section's dotted keys may reach into it;
///   a header may define a sub-table of it (`[x.z]`).
/// - Dotted keys never reach into a table defined by a header, an inline table, an array, or
///   any other value; `[[a]]` appends a table to an array of tables, never to a static array,
///   and never turns a table into an array or an array into a table.
/// - A key, and every table, is defined once.
///
/// Each rule broken is a `TOMLProblem` naming the key or table; the tree is then not used.
/// Inline tables are built with a tree of their own and stored whole, as values, so nothing
/// can be added to them afterwards.
struct TOMLTree {
    private enum Definition: Equatable {
        /// Created as the parent of a header's table; may still be defined by a header.
        case implicit
        /// Defined by a `[header]`, or an element of an array of tables.
        case header
        /// Created by dotted keys in the section numbered `section`.
        case dotted(section: Int)
    }

    private struct TableNode {
        var keys: [String] = []
        var children: [String: Node] = [:]
        var definition: Definition
    }

    private enum Node {
        /// An index in `tables`.
        case table(Int)
        /// An index in `arrays`, whose elements are indices in `tables`.
        case tableArray(Int)
        case value(TOML.Value)
    }

    /// Tables and arrays of tables are kept by index, so that they change in place.
    private var tables = [TableNode(definition: .header)]
    private var arrays: [[Int]] = []
    /// The section (the root, or the part after a header) whose keys are being read.
    private var section = 0
    private var current = 0
    private var currentPath: [String] = []

    /// `[path]`: defines the table and makes it the current one.
    mutating func defineTable(_ path: [String]) throws(TOMLProblem) {
        let (parent, name) = try parentForHeader(path)
        let table: Int
        switch tables[parent].children[name] {
        case nil:
            table = add(TableNode(definition: .header), named: name, in: parent)
        case .table(let t)?:
            switch tables[t].definition {
            case .implicit: tables[t].definition = .header
            case .header: throw TOMLProblem("the table \(TOMLProblem.quoted(key: path)) is defined twice")
            case .dotted: throw TOMLProblem("the table \(TOMLProblem.quoted(key: path)) is defined twice: its dotted keys already defined it")
            }
            table = t
        case .tableArray?:
            throw TOMLProblem("\(TOMLProblem.quoted(key: path)) is already an array of tables, not a table")
        case .value(let v)?:
            throw Self.notATable(path, v)
        }
        begin(table, path)
    }

    /// `[[path]]`: appends a table to the array of tables (creating it) and makes that table the
    /// current one.
    mutating func appendTable(_ path: [String]) throws(TOMLProblem) {
        let (parent, name) = try parentForHeader(path)
        let table = tables.count
        switch tables[parent].children[name] {
        case nil:
            tables.append(TableNode(definition: .header))
            arrays.append([table])
            tables[parent].children[name] = .tableArray(arrays.count - 1)
            tables[parent].keys.append(name)
        case .tableArray(let a)?:
            tables.append(TableNode(definition: .header))
            arrays[a].append(table)
        case .table?:
            throw TOMLProblem("\(TOMLProblem.quoted(key: path)) is already a table, not an array of tables")
        case .value(.array)?:
            throw TOMLProblem("\(TOMLProblem.quoted(key: path)) is a static array; [[…]] cannot append to it")
        case .value(let v)?:
            throw TOMLProblem("\(TOMLProblem.quoted(key: path)) is already \(v.kind), not an array of tables")
        }
        begin(table, path)
    }

    /// `key = value` in the current section.
    mutating func define(_ key: [String], _ value: TOML.Value) throws(TOMLProblem) {
        guard let name = key.last else { return }
        var table = current
        var path = currentPath
        for part in key.dropLast() {
            path.append(part)
            table = try tableForDottedKey(part, in: table, path: path)
        }
        if tables[table].children[name] != nil {
            throw TOMLProblem("\(TOMLProblem.quoted(key: currentPath + key)) is defined twice")
        }
        tables[table].children[name] = .value(value)
        tables[table].keys.append(name)
    }

    /// The root table, with every value in it.
    func table() -> TOML.Table { build(0) }

    // MARK: -

    private mutating func begin(_ table: Int, _ path: [String]) {
        section += 1
        current = table
        currentPath = path
    }

    private mutating func add(_ node: TableNode, named name: String, in parent: Int) -> Int {
        tables.append(node)
        tables[parent].children[name] = .table(tables.count - 1)
        tables[parent].keys.append(name)
        return tables.count - 1
    }

    /// The table a header's last key part goes in: headers pass through any table (creating
    /// missing ones) and through the last element of an array of tables.
    private mutating func parentForHeader(_ path: [String]) throws(TOMLProblem) -> (table: Int, name: String) {
        guard let name = path.last else { throw TOMLProblem("a header needs a key") }
        var table = 0
        for (k, part) in path.dropLast().enumerated() {
            switch tables[table].children[part] {
            case nil:
                table = add(TableNode(definition: .implicit), named: part, in: table)
            case .table(let t)?:
                table = t
            case .tableArray(let a)?:
                guard let last = arrays[a].last else { throw TOMLProblem("empty array of tables") }
                table = last
            case .value(let v)?:
                throw Self.notATable(Array(path.prefix(k + 1)), v)
            }
        }
        return (table, name)
    }

    /// The table a dotted key's part names, created in this section if missing.
    private mutating func tableForDottedKey(_ part: String, in table: Int, path: [String]) throws(TOMLProblem) -> Int {
        switch tables[table].children[part] {
        case nil:
            return add(TableNode(definition: .dotted(section: section)), named: part, in: table)
        case .table(let t)?:
            switch tables[t].definition {
            case .implicit:
                tables[t].definition = .dotted(section: section)
            case .dotted(let s) where s == section:
                break
            case .dotted:
                throw TOMLProblem("the table \(TOMLProblem.quoted(key: path)) was defined by dotted keys under another header")
            case .header:
                throw TOMLProblem("the table \(TOMLProblem.quoted(key: path)) is defined by its [header]; dotted keys cannot extend it")
            }
            return t
        case .tableArray?:
            throw TOMLProblem("\(TOMLProblem.quoted(key: path)) is already an array of tables; dotted keys cannot extend it")
        case .value(let v)?:
            throw Self.notATable(path, v)
        }
    }

    private static func notATable(_ path: [String], _ value: TOML.Value) -> TOMLProblem {
        if case .table = value {
            return TOMLProblem("\(TOMLProblem.quoted(key: path)) is an inline table and cannot be extended")
        }
        return TOMLProblem("\(TOMLProblem.quoted(key: path)) is already \(value.kind), not a table")
    }

    private func build(_ index: Int) -> TOML.Table {
        var out = TOML.Table()
        let node = tables[index]
        for key in node.keys {
            switch node.children[key] {
            case .table(let t)?: out.set(key, .table(build(t)))
            case .tableArray(let a)?: out.set(key, .array(arrays[a].map { .table(build($0)) }))
            case .value(let v)?: out.set(key, v)
            case nil: break
            }
        }
        return out
    }
}
