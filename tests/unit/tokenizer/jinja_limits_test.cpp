// The limits of jinja_limits.h: hostile templates (the ones that took the coordinator down in
// issue 15: deep nesting, long chains, huge strings, endless loops) fail with a Status at
// compile or render time, on a thread with a small stack, while every real chat template in the
// test data still renders a long conversation.
#include "tokenizer/jinja_limits.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <functional>

#include "tests/support/test_support.h"
#include "tests/unit/tokenizer/tokenizer_fixtures.h"
#include "tokenizer/chat_template.h"

namespace shardwise::testing {
namespace {

using nlohmann::json;
using tokenizer::ChatTemplate;
using tokenizer::jinja::kMaxRenderSteps;
using tokenizer::jinja::kMaxStringBytes;
using tokenizer::jinja::kMaxSyntaxDepth;

// Runs `work` on a thread with a 2 MiB stack, a quarter of the 8 MiB that the HTTP and gRPC
// threads get: what passes here has a margin on them. AddressSanitizer's redzones make each
// parser frame several times larger (a 2 MiB stack overflowed at depth 190 under it, 13 frames
// per level), so there the test thread gets the 8 MiB of the real threads: no margin, but no
// overflow either.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kTestStackBytes = std::size_t{8} << 20;
#else
constexpr std::size_t kTestStackBytes = std::size_t{2} << 20;
#endif

void on_small_stack(const std::function<void()>& work) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kTestStackBytes);
  pthread_t thread;
  auto run = [](void* arg) -> void* {
    (*static_cast<const std::function<void()>*>(arg))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, run, const_cast<std::function<void()>*>(&work)), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

// compile, then render one user message: the first error, or the text.
StatusOr<std::string> compile_and_render(const std::string& source,
                                         const json& extra = json::object()) {
  auto compiled = ChatTemplate::compile(source);
  if (!compiled.ok()) return compiled.status();
  const json messages = json::array({{{"role", "user"}, {"content", "Hi"}}});
  return (*compiled)->render(messages, true, json::object(), extra);
}

std::string repeat(std::string_view unit, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += unit;
  return out;
}

// Expects an error whose message contains `what`; returns it for further checks.
void expect_refused(const std::string& source, std::string_view what) {
  on_small_stack([&] {
    const auto result = compile_and_render(source);
    ASSERT_FALSE(result.ok()) << "accepted: " << source.substr(0, 80);
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << result.status().to_string();
    EXPECT_NE(result.status().message().find(what), std::string::npos)
        << result.status().to_string();
  });
}

TEST(JinjaLimits, DeepNestingFailsAtCompileTime) {
  const std::string deep = "nested more than " + std::to_string(kMaxSyntaxDepth);
  expect_refused("{{ " + repeat("(", 5000) + "1" + repeat(")", 5000) + " }}", deep);
  expect_refused("{{ " + repeat("[", 100000) + " }}", deep);
  expect_refused("{{ " + repeat("not ", 100000) + "x }}", deep);
  expect_refused("{{ " + repeat("-", 100000) + "1 }}", deep);
  expect_refused(repeat("{% if x %}", 20000) + repeat("{% endif %}", 20000), deep);
  expect_refused(repeat("{% for i in x %}", 5000) + repeat("{% endfor %}", 5000), deep);
  expect_refused("{{ 1 " + repeat("+ 1 ", 100000) + "}}", deep);
  expect_refused("{{ 'a' " + repeat("| trim ", 50000) + "}}", deep);
  expect_refused("{{ x" + repeat(".a", 50000) + " }}", deep);
  expect_refused("{{ x" + repeat("()", 50000) + " }}", deep);
  expect_refused("{{ 1 " + repeat("if 1 else 1 ", 50000) + "}}", deep);
}

TEST(JinjaLimits, NestingBelowTheLimitRenders) {
  const int depth = kMaxSyntaxDepth - 10;
  on_small_stack([&] {
    auto text = compile_and_render("{{ " + repeat("(", depth) + "1" + repeat(")", depth) + " }}");
    ASSERT_TRUE(text.ok()) << text.status().to_string();
    EXPECT_EQ(*text, "1");
    text = compile_and_render("{{ 0 " + repeat("+ 1 ", depth) + "}}");
    ASSERT_TRUE(text.ok()) << text.status().to_string();
    EXPECT_EQ(*text, std::to_string(depth));
    text = compile_and_render(repeat("{% if true %}", depth / 2) + "in" +
                              repeat("{% endif %}", depth / 2));
    ASSERT_TRUE(text.ok()) << text.status().to_string();
    EXPECT_EQ(*text, "in");
  });
}

TEST(JinjaLimits, RenderBudget) {
  expect_refused("{{ 'a' * 100000000 }}", "limit of");
  expect_refused("{{ 'a' * 9223372036854775807 }}", "limit of");
  expect_refused("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "limit of");
  expect_refused(
      "{% set s = 'ab' * 1000000 %}{% for i in range(30) %}{% set s = s ~ s %}"
      "{% endfor %}",
      "limit of");
  expect_refused(
      "{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}"
      "{% endfor %}",
      "budget of " + std::to_string(kMaxRenderSteps));
  expect_refused(
      "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
      "{% set ns.l = ns.l + [i] %}{% endfor %}",
      "budget");
  expect_refused(
      "{% set s = 'a' * 1000000 %}{% for i in range(100000) %}{% if 'b' in s %}"
      "{% endif %}{% endfor %}",
      "budget");
  expect_refused("{{ range(10000000) | list }}", "limit of");
  expect_refused("{{ ('a' * 2000000) | list | length }}", "limit of");
  expect_refused("{{ range(100000) | unique | list }}", "budget");
  expect_refused("{{ ('a,' * 4000000).split(',') | length }}", "limit of");
  expect_refused("{{ ('x' * 1000000).replace('x', 'yyyyyyyyyyyyyyyyyyyy') }}", "limit of");
  expect_refused("{{ range(1000) | join('a' * 100000) }}", "limit of");
  expect_refused("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "nested too deeply");
}

TEST(JinjaLimits, ValuesStayTrees) {
  expect_refused("{% set x = [] %}{% for i in range(1000) %}{% set x = [x] %}{% endfor %}{{ x }}",
                 "nested more than");
  expect_refused("{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns }}", "");
  expect_refused("{% set a = namespace() %}{% set b = namespace(x=a) %}{% set a.y = b %}", "");
  on_small_stack([] {
    // The chain a template can build without `set` stays shallow; the namespace's own use works.
    auto text = compile_and_render(
        "{% set ns = namespace(found=false, items=[]) %}{% for m in messages %}"
        "{% set ns.found = true %}{% set ns.items = ns.items + [m.content] %}{% endfor %}"
        "{{ ns.found }} {{ ns.items }}");
    ASSERT_TRUE(text.ok()) << text.status().to_string();
    EXPECT_EQ(*text, "True ['Hi']");
  });
}

TEST(JinjaLimits, DeepJsonVariablesAreRefused) {
  json deep = "leaf";
  for (int i = 0; i < 1000; ++i) deep = json::array({deep});
  on_small_stack([&] {
    const auto result = compile_and_render("{{ deep }}", {{"deep", deep}});
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.status().message().find("JSON nested more than"), std::string::npos)
        << result.status().to_string();
  });
}

TEST(JinjaLimits, IntegersDoNotOverflow) {
  for (const char* source :
       {"{{ 9223372036854775807 + 1 }}", "{{ -9223372036854775807 - 2 }}",
        "{{ 4611686018427387904 * 2 }}", "{{ 3 ** 40 }}", "{{ (-9223372036854775807 - 1) // -1 }}",
        "{{ (-9223372036854775807 - 1) | abs }}", "{{ (10.0 ** 300) | int }}"}) {
    SCOPED_TRACE(source);
    expect_refused(source, "");
  }
  expect_refused("{{ 99999999999999999999 }}", "out of range");
  expect_refused("{{ '\\uZZZZ' }}", "escape");
  expect_refused("{{ 'x' | indent(-1) }}", "indent");
  expect_refused("{{ [1] | tojson(indent=4294967297) }}", "indent");
  const std::pair<const char*, const char*> cases[] = {
      {"{{ (-9223372036854775807 - 1) % -1 }}", "0"},
      {"{{ 2 ** 62 }}", "4611686018427387904"},
      {"{{ (-1) ** 9223372036854775807 }}", "-1"},
      {"{{ range(9223372036854775806, 9223372036854775807, 5) | list }}", "[9223372036854775806]"},
      {"{{ 'a' * -3 }}|", "|"},
      {"{{ 'h\xC3\xA9llo'[1] }}{{ 'h\xC3\xA9llo'[-4] }}", "\xC3\xA9\xC3\xA9"},
      {"{{ 'abcdef'[::-9223372036854775807] }}{{ 'abcdef'[1:-1:2] }}", "fbd"},
      {"{{ [1, 2, 3][-9223372036854775807:] }}", "[1, 2, 3]"},
      {"{{ 'xxhixx'.strip('x') }}{{ ('a' * 100 ~ 'b').find('a' * 70 ~ 'b') }}", "hi30"},
      {"{{ -9223372036854775807 | int }}", "-9223372036854775807"},
  };
  for (const auto& [source, expected] : cases) {
    SCOPED_TRACE(source);
    const auto text = compile_and_render(source);
    ASSERT_TRUE(text.ok()) << text.status().to_string();
    EXPECT_EQ(*text, expected);
  }
}

// A long conversation (2,000 messages of 1 KB: 2 MB of prompt) through every real template of the
// test data: the limits leave room for the prompts a context window holds.
TEST(JinjaLimits, RealTemplatesRenderLongConversations) {
  std::vector<std::pair<std::string, std::string>> templates;
  for (const char* name :
       {"Qwen-Qwen2.5-7B-Instruct.jinja", "meta-llama-Llama-3.1-8B-Instruct.jinja",
        "meta-llama-Llama-3.2-3B-Instruct.jinja"}) {
    templates.emplace_back(name, read_text_file(testdata_dir() / "chat-templates" / name));
  }
  for (const char* name :
       {"llama3-tokenizer/tokenizer_config.json", "qwen3-tokenizer/tokenizer_config.json"}) {
    templates.emplace_back(name, read_json(name)["chat_template"].get<std::string>());
  }
  // Held by name: a range-for over read_json(...)["cases"] would walk a destroyed temporary.
  const json cases = read_json("chat-templates/llama_cpp_test_chat_template_cases.json");
  for (const json& c : cases["cases"]) {
    templates.emplace_back(c["name"].get<std::string>(), c["template_str"].get<std::string>());
  }
  json messages = json::array();
  for (int i = 0; i < 2000; ++i) {
    messages.push_back({{"role", i % 2 == 0 ? "user" : "assistant"},
                        {"content", std::to_string(i) + std::string(1000, 'w')}});
  }
  const json special = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  for (const auto& [name, source] : templates) {
    SCOPED_TRACE(name);
    on_small_stack([&] {
      auto compiled = ChatTemplate::compile(source);
      ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
      auto text = (*compiled)->render(messages, true, special, json::object());
      ASSERT_TRUE(text.ok()) << text.status().to_string();
      EXPECT_GT(text->size(), 2000u * 1000u);
      EXPECT_LT(text->size(), kMaxStringBytes);
    });
  }
}

}  // namespace
}  // namespace shardwise::testing
