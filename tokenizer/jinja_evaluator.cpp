#include "tokenizer/jinja_evaluator.h"

#include <unordered_map>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_limits.h"
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
    const DepthGuard frame(depth_, kMaxRenderDepth, "rendering recursed",
                           body.empty() ? 0 : body.front()->line);
    for (const NodePtr& node : body) {
      const Flow flow = exec_node(*node, out);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

 private:
  using Scope = std::unordered_map<std::string, Value>;

  void charge(int64_t steps) {
    steps_ += steps;
    if (steps_ > kMaxRenderSteps)
      fail("the template ran past its budget of {} steps", kMaxRenderSteps);
  }

  // The work a value stands for: its elements, or its bytes.
  static int64_t size_in_steps(const Value& value) {
    if (value.is_string()) return static_cast<int64_t>(value.as_string().size() / kBytesPerStep);
    if (value.is_array()) return static_cast<int64_t>(value.as_array().size());
    if (value.is_object()) return static_cast<int64_t>(value.as_object().items.size());
    return 0;
  }

  void append(std::string& out, std::string_view text) {
    check_string_size(out.size() + text.size());
    charge(static_cast<int64_t>(text.size() / kBytesPerStep));
    out += text;
  }

  // A value that `set` stores must not nest too deep to print or destroy, and a namespace may
  // not hold a namespace: namespaces are the only mutable values, so this keeps every value a
  // tree (no cycle can form) whose depth was checked when it was stored.
  void check_storable(const Value& value, bool into_namespace, int line) {
    const ValueShape shape = shape_of(value, kMaxValueDepth);
    charge(shape.visited);
    if (shape.depth > kMaxValueDepth) {
      fail("line {}: a value nested more than {} deep", line, kMaxValueDepth);
    }
    if (into_namespace && shape.holds_namespace) {
      fail("line {}: a namespace attribute cannot hold a namespace", line);
    }
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      const auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    if (auto function = global_function(name)) return *function;
    return Value();
  }

  Flow exec_node(const Node& node, std::string& out) {
    charge(1);
    switch (node.kind) {
      case Node::Kind::kText:
        append(out, node.text);
        return Flow::kNormal;
      case Node::Kind::kOutput:
        append(out, eval(*node.expr).str());
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
    check_storable(value, !node.attribute.empty(), node.line);
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
    const Value iterable = eval(*node.expr);
    // A list is walked in place (lists are never changed once built); dicts and strings are
    // listed first.
    const Array listed = iterable.is_array() ? Array() : iterate(iterable);
    const Array& all = iterable.is_array() ? iterable.as_array() : listed;
    scopes_.emplace_back();
    std::vector<const Value*> items;
    items.reserve(all.size());
    for (const Value& item : all) {
      if (node.condition) {
        charge(1);
        bind_targets(node, item);
        if (!eval(*node.condition).truthy()) continue;
      }
      items.push_back(&item);
    }
    const std::size_t n = items.size();
    // One loop object for the whole loop, as Jinja's: a template that keeps it sees it move on.
    auto loop = make_object();
    loop->items = {{"index", Value()},     {"index0", Value()},   {"revindex", Value()},
                   {"revindex0", Value()}, {"first", Value()},    {"last", Value()},
                   {"length", Value(n)},   {"previtem", Value()}, {"nextitem", Value()}};
    for (std::size_t i = 0; i < n; ++i) {
      charge(1);
      bind_targets(node, *items[i]);
      auto& fields = loop->items;
      fields[0].second = Value(i + 1);
      fields[1].second = Value(i);
      fields[2].second = Value(n - i);
      fields[3].second = Value(n - i - 1);
      fields[4].second = Value(i == 0);
      fields[5].second = Value(i + 1 == n);
      fields[7].second = i > 0 ? *items[i - 1] : Value();
      fields[8].second = i + 1 < n ? *items[i + 1] : Value();
      scopes_.back()["loop"] = Value(loop);
      if (exec(node.body, out) == Flow::kBreak) break;
    }
    scopes_.pop_back();
    if (n == 0) exec(node.else_body, out);
  }

  Value make_macro(const Node& node) {
    const Node* macro = &node;
    return Value(Function([this, macro](Arguments& args) -> Value {
      if (calls_ >= kMaxCallDepth) fail("macro '{}': calls nested too deeply", macro->targets[0]);
      ++calls_;
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
      --calls_;
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
    const Value left = eval(*expr.args[0]);
    const Value right = eval(*expr.args[1]);
    // A substring search (linear: jinja_builtins.cpp) or a scan of the list.
    if (op == "in" || op == "not in") charge(size_in_steps(left) + size_in_steps(right));
    return binary_operator(op, left, right);
  }

  Value eval(const Expr& expr) {
    const DepthGuard frame(depth_, kMaxRenderDepth, "rendering recursed", expr.line);
    charge(1);
    Value value = eval_kind(expr);
    // Strings are copied wherever they go; lists and dicts are shared unless newly built.
    const bool built = expr.kind != Expr::Kind::kName && expr.kind != Expr::Kind::kAttr &&
                       expr.kind != Expr::Kind::kIndex && expr.kind != Expr::Kind::kLiteral;
    if (value.is_string() || built) charge(size_in_steps(value));
    return value;
  }

  Value eval_kind(const Expr& expr) {
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
        // Filters walk their input about once; unique compares each item with those kept.
        const int64_t size = size_in_steps(input);
        charge(expr.name == "unique" ? size * size : size);
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
  int calls_ = 0;  // macro calls in progress
  int depth_ = 0;  // Frames alive
  int64_t steps_ = 0;
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
