#include "tokenizer/jinja_parser.h"

#include <initializer_list>

#include "tokenizer/jinja_lexer.h"

namespace shardwise::tokenizer::jinja {
namespace {

using Kind = Token::Kind;

ExprPtr make_expr(Expr::Kind kind, int line) {
  auto expr = std::make_unique<Expr>();
  expr->kind = kind;
  expr->line = line;
  return expr;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Body parse_template() {
    Body body = parse_body({});
    if (peek().kind != Kind::kEnd) fail("line {}: unexpected '{}'", peek().line, peek().text);
    return body;
  }

 private:
  const Token& peek(std::size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool at_operator(std::string_view op) const {
    return peek().kind == Kind::kOperator && peek().text == op;
  }
  bool at_name(std::string_view name) const {
    return peek().kind == Kind::kName && peek().text == name;
  }
  bool accept_operator(std::string_view op) {
    if (!at_operator(op)) return false;
    ++pos_;
    return true;
  }
  bool accept_name(std::string_view name) {
    if (!at_name(name)) return false;
    ++pos_;
    return true;
  }
  void expect_operator(std::string_view op) {
    if (!accept_operator(op))
      fail("line {}: expected '{}' but found '{}'", peek().line, op, peek().text);
  }
  void expect(Kind kind, std::string_view what) {
    if (peek().kind != kind)
      fail("line {}: expected {} but found '{}'", peek().line, what, peek().text);
    ++pos_;
  }
  std::string expect_name() {
    if (peek().kind != Kind::kName)
      fail("line {}: expected a name but found '{}'", peek().line, peek().text);
    return next().text;
  }

  // Statements ---------------------------------------------------------------------------

  // Parses until a block tag whose keyword is in `stops` (left unconsumed, after its {%).
  Body parse_body(std::initializer_list<std::string_view> stops) {
    Body body;
    while (peek().kind != Kind::kEnd) {
      const Token& token = peek();
      if (token.kind == Kind::kText) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::kText;
        node->text = next().text;
        body.push_back(std::move(node));
      } else if (token.kind == Kind::kVarBegin) {
        next();
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::kOutput;
        node->line = token.line;
        node->expr = parse_expression();
        expect(Kind::kVarEnd, "'}}'");
        body.push_back(std::move(node));
      } else if (token.kind == Kind::kBlockBegin) {
        const Token& keyword = peek(1);
        for (const std::string_view stop : stops) {
          if (keyword.kind == Kind::kName && keyword.text == stop) return body;
        }
        next();
        body.push_back(parse_statement());
      } else {
        fail("line {}: unexpected '{}'", token.line, token.text);
      }
    }
    if (stops.size() != 0) fail("unexpected end of template: missing '{}'", *(stops.end() - 1));
    return body;
  }

  void expect_block_tag(std::string_view keyword) {
    expect(Kind::kBlockBegin, "'{%'");
    if (!accept_name(keyword)) fail("line {}: expected '{}'", peek().line, keyword);
    expect(Kind::kBlockEnd, "'%}'");
  }

  NodePtr parse_statement() {
    const Token& keyword = next();
    if (keyword.kind != Kind::kName) fail("line {}: expected a statement keyword", keyword.line);
    auto node = std::make_unique<Node>();
    node->line = keyword.line;
    const std::string& word = keyword.text;
    if (word == "if") {
      parse_if(*node);
    } else if (word == "for") {
      parse_for(*node);
    } else if (word == "set") {
      parse_set(*node);
    } else if (word == "macro") {
      parse_macro(*node);
    } else if (word == "break" || word == "continue") {
      node->kind = word == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      expect(Kind::kBlockEnd, "'%}'");
    } else if (word == "generation") {
      // transformers' assistant-mask extension: renders its body unchanged.
      node->kind = Node::Kind::kBlock;
      expect(Kind::kBlockEnd, "'%}'");
      node->body = parse_body({"endgeneration"});
      expect_block_tag("endgeneration");
    } else {
      fail_unsupported("line {}: unsupported Jinja statement '{{% {} %}}'", keyword.line, word);
    }
    return node;
  }

  void parse_if(Node& node) {
    node.kind = Node::Kind::kIf;
    ExprPtr condition = parse_expression();
    expect(Kind::kBlockEnd, "'%}'");
    while (true) {
      Body body = parse_body({"elif", "else", "endif"});
      node.branches.emplace_back(std::move(condition), std::move(body));
      expect(Kind::kBlockBegin, "'{%'");
      const std::string word = expect_name();
      if (word == "endif") break;
      if (word == "elif") {
        condition = parse_expression();
      } else {
        condition = nullptr;
      }
      expect(Kind::kBlockEnd, "'%}'");
      if (word == "else") {
        node.branches.emplace_back(nullptr, parse_body({"endif"}));
        expect_block_tag("endif");
        return;
      }
    }
    expect(Kind::kBlockEnd, "'%}'");
  }

  void parse_for(Node& node) {
    node.kind = Node::Kind::kFor;
    do {
      node.targets.push_back(expect_name());
    } while (accept_operator(","));
    if (!accept_name("in")) fail("line {}: expected 'in' in for loop", node.line);
    node.expr = parse_or();  // not a full expression: a trailing 'if' filters the loop
    if (accept_name("if")) node.condition = parse_or();
    if (accept_name("recursive"))
      fail_unsupported("line {}: recursive for loops are not supported", node.line);
    expect(Kind::kBlockEnd, "'%}'");
    node.body = parse_body({"else", "endfor"});
    expect(Kind::kBlockBegin, "'{%'");
    if (accept_name("else")) {
      expect(Kind::kBlockEnd, "'%}'");
      node.else_body = parse_body({"endfor"});
      expect(Kind::kBlockBegin, "'{%'");
    }
    if (!accept_name("endfor")) fail("line {}: expected 'endfor'", peek().line);
    expect(Kind::kBlockEnd, "'%}'");
  }

  void parse_set(Node& node) {
    node.targets.push_back(expect_name());
    if (accept_operator(".")) node.attribute = expect_name();
    while (accept_operator(",")) node.targets.push_back(expect_name());
    if (peek().kind == Kind::kBlockEnd) {
      if (node.targets.size() != 1 || !node.attribute.empty())
        fail("line {}: bad block set", node.line);
      next();
      node.kind = Node::Kind::kSetBlock;
      node.body = parse_body({"endset"});
      expect_block_tag("endset");
      return;
    }
    node.kind = Node::Kind::kSet;
    expect_operator("=");
    node.expr = parse_expression();
    expect(Kind::kBlockEnd, "'%}'");
  }

  void parse_macro(Node& node) {
    node.kind = Node::Kind::kMacro;
    node.targets.push_back(expect_name());
    expect_operator("(");
    while (!accept_operator(")")) {
      std::string name = expect_name();
      ExprPtr default_value;
      if (accept_operator("=")) default_value = parse_expression();
      node.params.emplace_back(std::move(name), std::move(default_value));
      if (!at_operator(")")) expect_operator(",");
    }
    expect(Kind::kBlockEnd, "'%}'");
    node.body = parse_body({"endmacro"});
    expect_block_tag("endmacro");
  }

  // Expressions, lowest precedence first (as in Jinja's parser) ---------------------------

  ExprPtr parse_expression() {
    ExprPtr value = parse_or();
    if (!at_name("if")) return value;
    const int line = next().line;
    auto ternary = make_expr(Expr::Kind::kTernary, line);
    ternary->args.push_back(std::move(value));
    ternary->args.push_back(parse_or());
    ternary->args.push_back(accept_name("else") ? parse_expression() : nullptr);
    return ternary;
  }

  ExprPtr binary(std::string op, ExprPtr left, ExprPtr right) {
    auto expr = make_expr(Expr::Kind::kBinary, left->line);
    expr->name = std::move(op);
    expr->args.push_back(std::move(left));
    expr->args.push_back(std::move(right));
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (accept_name("or")) left = binary("or", std::move(left), parse_and());
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (accept_name("and")) left = binary("and", std::move(left), parse_not());
    return left;
  }

  ExprPtr parse_not() {
    if (at_name("not")) {
      const int line = next().line;
      auto expr = make_expr(Expr::Kind::kUnary, line);
      expr->name = "not";
      expr->args.push_back(parse_not());
      return expr;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr left = parse_math1();
    while (true) {
      std::string op;
      for (const char* candidate : {"==", "!=", "<=", ">=", "<", ">"}) {
        if (at_operator(candidate)) op = candidate;
      }
      if (!op.empty()) {
        next();
      } else if (accept_name("in")) {
        op = "in";
      } else if (at_name("not") && peek(1).kind == Kind::kName && peek(1).text == "in") {
        pos_ += 2;
        op = "not in";
      } else {
        return left;
      }
      left = binary(op, std::move(left), parse_math1());
    }
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (at_operator("+") || at_operator("-")) {
      const std::string op = next().text;
      left = binary(op, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (accept_operator("~")) left = binary("~", std::move(left), parse_math2());
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (at_operator("*") || at_operator("/") || at_operator("//") || at_operator("%")) {
      const std::string op = next().text;
      left = binary(op, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary();
    while (accept_operator("**")) left = binary("**", std::move(left), parse_unary());
    return left;
  }

  ExprPtr parse_unary() {
    if (at_operator("-") || at_operator("+")) {
      const Token& op = next();
      auto expr = make_expr(Expr::Kind::kUnary, op.line);
      expr->name = op.text;
      expr->args.push_back(parse_unary());
      return expr;
    }
    return parse_filters(parse_postfix(parse_primary()));
  }

  ExprPtr parse_primary() {
    const Token& token = next();
    switch (token.kind) {
      case Kind::kString: {
        std::string text = token.text;
        while (peek().kind == Kind::kString) text += next().text;  // adjacent literals join
        auto expr = make_expr(Expr::Kind::kLiteral, token.line);
        expr->value = Value(std::move(text));
        return expr;
      }
      case Kind::kInt:
      case Kind::kFloat: {
        auto expr = make_expr(Expr::Kind::kLiteral, token.line);
        std::string digits = token.text;
        std::erase(digits, '_');
        expr->value = token.kind == Kind::kInt ? Value(static_cast<int64_t>(std::stoll(digits)))
                                               : Value(std::stod(digits));
        return expr;
      }
      case Kind::kName:
        return parse_name(token);
      case Kind::kOperator:
        if (token.text == "(") return parse_parenthesized(token.line);
        if (token.text == "[") return parse_list(token.line);
        if (token.text == "{") return parse_dict(token.line);
        break;
      default:
        break;
    }
    fail("line {}: unexpected '{}' in expression", token.line, token.text);
  }

  ExprPtr parse_name(const Token& token) {
    auto expr = make_expr(Expr::Kind::kLiteral, token.line);
    const std::string& name = token.text;
    if (name == "true" || name == "True") {
      expr->value = Value(true);
    } else if (name == "false" || name == "False") {
      expr->value = Value(false);
    } else if (name == "none" || name == "None") {
      expr->value = Value(nullptr);
    } else {
      expr->kind = Expr::Kind::kName;
      expr->name = name;
    }
    return expr;
  }

  // (expr) or a tuple, which behaves as a list here.
  ExprPtr parse_parenthesized(int line) {
    if (accept_operator(")")) return make_expr(Expr::Kind::kList, line);
    ExprPtr first = parse_expression();
    if (accept_operator(")")) return first;
    auto tuple = make_expr(Expr::Kind::kList, line);
    tuple->args.push_back(std::move(first));
    while (accept_operator(",")) {
      if (at_operator(")")) break;
      tuple->args.push_back(parse_expression());
    }
    expect_operator(")");
    return tuple;
  }

  ExprPtr parse_list(int line) {
    auto list = make_expr(Expr::Kind::kList, line);
    while (!accept_operator("]")) {
      list->args.push_back(parse_expression());
      if (!at_operator("]")) expect_operator(",");
    }
    return list;
  }

  ExprPtr parse_dict(int line) {
    auto dict = make_expr(Expr::Kind::kDict, line);
    while (!accept_operator("}")) {
      dict->args.push_back(parse_expression());
      expect_operator(":");
      dict->args.push_back(parse_expression());
      if (!at_operator("}")) expect_operator(",");
    }
    return dict;
  }

  void parse_call_arguments(Expr& call) {
    while (!accept_operator(")")) {
      if (peek().kind == Kind::kName && peek(1).kind == Kind::kOperator && peek(1).text == "=") {
        std::string name = next().text;
        next();
        call.kwargs.emplace_back(std::move(name), parse_expression());
      } else {
        call.args.push_back(parse_expression());
      }
      if (!at_operator(")")) expect_operator(",");
    }
  }

  ExprPtr parse_subscript(ExprPtr target, int line) {
    std::vector<ExprPtr> parts;
    bool is_slice = false;
    ExprPtr current;
    while (!accept_operator("]")) {
      if (accept_operator(":")) {
        is_slice = true;
        parts.push_back(std::move(current));
        current = nullptr;
        continue;
      }
      if (current) fail("line {}: bad subscript", line);
      current = parse_expression();
    }
    parts.push_back(std::move(current));
    auto expr = make_expr(is_slice ? Expr::Kind::kSlice : Expr::Kind::kIndex, line);
    expr->args.push_back(std::move(target));
    if (!is_slice && !expr->args.back()) fail("line {}: empty subscript", line);
    if (parts.size() > 3) fail("line {}: bad slice", line);
    parts.resize(is_slice ? 3 : 1);
    for (auto& part : parts) expr->args.push_back(std::move(part));
    return expr;
  }

  ExprPtr parse_postfix(ExprPtr expr) {
    while (true) {
      const int line = peek().line;
      if (accept_operator(".")) {
        auto attr = make_expr(Expr::Kind::kAttr, line);
        attr->name = expect_name();
        attr->args.push_back(std::move(expr));
        expr = std::move(attr);
      } else if (accept_operator("[")) {
        expr = parse_subscript(std::move(expr), line);
      } else if (accept_operator("(")) {
        auto call = make_expr(Expr::Kind::kCall, line);
        call->args.push_back(std::move(expr));
        parse_call_arguments(*call);
        expr = std::move(call);
      } else {
        return expr;
      }
    }
  }

  // `| filter(args)` and `is [not] test(args)`, left to right.
  ExprPtr parse_filters(ExprPtr expr) {
    while (true) {
      const int line = peek().line;
      if (accept_operator("|")) {
        auto filter = make_expr(Expr::Kind::kFilter, line);
        filter->name = expect_name();
        filter->args.push_back(std::move(expr));
        if (accept_operator("(")) parse_call_arguments(*filter);
        expr = parse_postfix(std::move(filter));
      } else if (accept_name("is")) {
        auto test = make_expr(Expr::Kind::kTest, line);
        test->negated = accept_name("not");
        test->name = expect_name();
        test->args.push_back(std::move(expr));
        if (accept_operator("(")) {
          parse_call_arguments(*test);
        } else if (peek().kind == Kind::kString || peek().kind == Kind::kInt ||
                   peek().kind == Kind::kFloat ||
                   (peek().kind == Kind::kName && !at_name("and") && !at_name("or") &&
                    !at_name("else") && !at_name("if") && !at_name("in") && !at_name("not"))) {
          test->args.push_back(parse_primary());  // `is equalto 'x'`, `is sameas false`
        }
        expr = std::move(test);
      } else {
        return expr;
      }
    }
  }

  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
};

}  // namespace

Body parse(std::string_view source) { return Parser(lex(source)).parse_template(); }

}  // namespace shardwise::tokenizer::jinja
