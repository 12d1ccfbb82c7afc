#include "tokenizer/jinja_evaluator.h"

#include <unordered_map>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_parser.h"

namespace shardwise::tokenizer::jinja {
namespace {

enum class Flow { kNormal, kBreak, kContinue };

// Recursion limit for macros calling macros, so a bad template cannot exhaust the stack.
constexpr int kMaxCallDepth = 64;

class Renderer {
 public:
  explicit Renderer(const std::shared_ptr<Object>& globals) {
    scopes_.emplace_back();
    for (const auto& [key, value] : globals->items) scopes_.back()[key] = value;
  }

  Flow exec(const Body& body, std::string& out) {
    for (const NodePtr& node : body) {
      const Flow flow = exec_node(*node, out);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

 private:
  using Scope = std::unordered_map<std::string, Value>;

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      const auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    if (auto function = global_function(name)) return *function;
    return Value();
  }

  Flow exec_node(const Node& node, std::string& out) {
    switch (node.kind) {
      case Node::Kind::kText:
        out += node.text;
        return Flow::kNormal;
      case Node::Kind::kOutput:
        out += eval(*node.expr).str();
        return Flow::kNormal;
      case Node::Kind::kIf:
        for (const auto& [condition, body] : node.branches) {
          if (!condition || eval(*condition).truthy()) return exec(body, out);
        }
        return Flow::kNormal;
      case Node::Kind::kFor:
        exec_for(node, out);
        return Flow::kNormal;
      case Node::Kind::kSet:
        exec_set(node);
        return Flow::kNormal;
      case Node::Kind::kSetBlock: {
        std::string captured;
        exec(node.body, captured);
        scopes_.back()[node.targets[0]] = Value(std::move(captured));
        return Flow::kNormal;
      }
      case Node::Kind::kMacro:
        scopes_.back()[node.targets[0]] = make_macro(node);
        return Flow::kNormal;
      case Node::Kind::kBreak:
        return Flow::kBreak;
      case Node::Kind::kContinue:
        return Flow::kContinue;
      case Node::Kind::kBlock:
        return exec(node.body, out);
    }
    return Flow::kNormal;
  }

  void exec_set(const Node& node) {
    Value value = eval(*node.expr);
    if (!node.attribute.empty()) {
      const Value target = lookup(node.targets[0]);
      if (!target.is_object() || !target.as_object().is_namespace) {
        fail("line {}: cannot set attribute '{}' of {} (only namespace objects)", node.line,
             node.attribute, target.type_name());
      }
      target.as_object().set(node.attribute, std::move(value));
      return;
    }
    if (node.targets.size() == 1) {
      scopes_.back()[node.targets[0]] = std::move(value);
      return;
    }
    const Array items = iterate(value);
    if (items.size() != node.targets.size())
      fail("line {}: cannot unpack {} values", node.line, items.size());
    for (std::size_t i = 0; i < items.size(); ++i) scopes_.back()[node.targets[i]] = items[i];
  }

  void bind_targets(const Node& node, const Value& item) {
    Scope& scope = scopes_.back();
    if (node.targets.size() == 1) {
      scope[node.targets[0]] = item;
      return;
    }
    const Array parts = iterate(item);
    if (parts.size() != node.targets.size()) {
      fail("line {}: cannot unpack {} values into {} loop variables", node.line, parts.size(),
           node.targets.size());
    }
    for (std::size_t i = 0; i < parts.size(); ++i) scope[node.targets[i]] = parts[i];
  }

  void exec_for(const Node& node, std::string& out) {
    const Array all = iterate(eval(*node.expr));
    scopes_.emplace_back();
    Array items;
    for (const Value& item : all) {
      if (node.condition) {
        bind_targets(node, item);
        if (!eval(*node.condition).truthy()) continue;
      }
      items.push_back(item);
    }
    const std::size_t n = items.size();
    for (std::size_t i = 0; i < n; ++i) {
      bind_targets(node, items[i]);
      auto loop = make_object();
      loop->items = {{"index", Value(i + 1)},
                     {"index0", Value(i)},
                     {"revindex", Value(n - i)},
                     {"revindex0", Value(n - i - 1)},
                     {"first", Value(i == 0)},
                     {"last", Value(i + 1 == n)},
                     {"length", Value(n)},
                     {"previtem", i > 0 ? items[i - 1] : Value()},
                     {"nextitem", i + 1 < n ? items[i + 1] : Value()}};
      scopes_.back()["loop"] = Value(loop);
      if (exec(node.body, out) == Flow::kBreak) break;
    }
    scopes_.pop_back();
    if (n == 0) exec(node.else_body, out);
  }

  Value make_macro(const Node& node) {
    const Node* macro = &node;
    return Value(Function([this, macro](Arguments& args) -> Value {
      if (++depth_ > kMaxCallDepth) fail("macro '{}': calls nested too deeply", macro->targets[0]);
      scopes_.emplace_back();
      for (std::size_t i = 0; i < macro->params.size(); ++i) {
        const auto& [name, default_value] = macro->params[i];
        Value value = args.get(i, name);
        if (value.is_undefined() && default_value) value = eval(*default_value);
        scopes_.back()[name] = value;
      }
      std::string out;
      exec(macro->body, out);
      scopes_.pop_back();
      --depth_;
      return Value(std::move(out));
    }));
  }

  Arguments eval_arguments(const Expr& expr, std::size_t first) {
    Arguments args;
    for (std::size_t i = first; i < expr.args.size(); ++i)
      args.positional.push_back(eval(*expr.args[i]));
    for (const auto& [name, value] : expr.kwargs) args.keyword.emplace_back(name, eval(*value));
    return args;
  }

  Value eval_attribute(const Expr& expr) {
    const Value target = eval(*expr.args[0]);
    if (target.is_object()) {
      if (const Value* found = target.as_object().find(expr.name)) return *found;
    }
    if (auto method = bound_method(target, expr.name)) return *method;
    return Value();
  }

  Value eval_call(const Expr& expr) {
    const Value callee = eval(*expr.args[0]);
    if (!callee.is_callable()) {
      const std::string name =
          expr.args[0]->kind == Expr::Kind::kName || expr.args[0]->kind == Expr::Kind::kAttr
              ? expr.args[0]->name
              : "expression";
      fail_unsupported("line {}: '{}' is not a supported function or method", expr.line, name);
    }
    Arguments args = eval_arguments(expr, 1);
    return callee.as_function()(args);
  }

  Value eval_binary(const Expr& expr) {
    const std::string& op = expr.name;
    if (op == "and") {
      Value left = eval(*expr.args[0]);
      return left.truthy() ? eval(*expr.args[1]) : left;
    }
    if (op == "or") {
      Value left = eval(*expr.args[0]);
      return left.truthy() ? left : eval(*expr.args[1]);
    }
    return binary_operator(op, eval(*expr.args[0]), eval(*expr.args[1]));
  }

  Value eval(const Expr& expr) {
    switch (expr.kind) {
      case Expr::Kind::kLiteral:
        return expr.value;
      case Expr::Kind::kName:
        return lookup(expr.name);
      case Expr::Kind::kList: {
        Array items;
        for (const ExprPtr& item : expr.args) items.push_back(eval(*item));
        return Value(std::move(items));
      }
      case Expr::Kind::kDict: {
        auto object = make_object();
        for (std::size_t i = 0; i + 1 < expr.args.size(); i += 2) {
          const Value key = eval(*expr.args[i]);
          if (!key.is_string()) fail("line {}: dict keys must be strings", expr.line);
          object->set(key.as_string(), eval(*expr.args[i + 1]));
        }
        return Value(object);
      }
      case Expr::Kind::kAttr:
        return eval_attribute(expr);
      case Expr::Kind::kIndex:
        return subscript(eval(*expr.args[0]), eval(*expr.args[1]));
      case Expr::Kind::kSlice: {
        const auto part = [&](std::size_t i) {
          return expr.args[i] ? eval(*expr.args[i]) : Value();
        };
        return slice(eval(*expr.args[0]), part(1), part(2), part(3));
      }
      case Expr::Kind::kCall:
        return eval_call(expr);
      case Expr::Kind::kFilter: {
        const Value input = eval(*expr.args[0]);
        Arguments args = eval_arguments(expr, 1);
        return apply_filter(expr.name, input, args);
      }
      case Expr::Kind::kTest: {
        // `x is defined` must not fail on an undefined x, which eval() never does here.
        const Value input = eval(*expr.args[0]);
        Arguments args = eval_arguments(expr, 1);
        return Value(apply_test(expr.name, input, args) != expr.negated);
      }
      case Expr::Kind::kUnary: {
        const Value operand = eval(*expr.args[0]);
        if (expr.name == "not") return Value(!operand.truthy());
        if (!operand.is_number()) fail("line {}: unary '{}' needs a number", expr.line, expr.name);
        if (expr.name == "+") return operand;
        return operand.is_int() ? Value(-operand.as_int()) : Value(-operand.as_number());
      }
      case Expr::Kind::kBinary:
        return eval_binary(expr);
      case Expr::Kind::kTernary:
        if (eval(*expr.args[1]).truthy()) return eval(*expr.args[0]);
        return expr.args[2] ? eval(*expr.args[2]) : Value();
    }
    return Value();
  }

  std::vector<Scope> scopes_;
  int depth_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<Template>> Template::compile(std::string_view source) {
  try {
    return std::unique_ptr<Template>(new Template(parse(source)));
  } catch (const Error& e) {
    return Status(e.code(), e.what());
  }
}

StatusOr<std::string> Template::render(const std::shared_ptr<Object>& globals) const {
  try {
    Renderer renderer(globals);
    std::string out;
    renderer.exec(body_, out);
    return out;
  } catch (const Error& e) {
    return Status(e.code(), e.what());
  }
}

}  // namespace shardwise::tokenizer::jinja
