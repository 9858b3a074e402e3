"""Readable flow run names such as "crimson-otter"."""
import random

ADJECTIVES = """amber ancient azure bold brave bright brisk calm clever cobalt cosmic crimson
curious daring dazzling eager electric emerald fearless fiery gentle giant golden graceful
hidden humble icy jade jolly keen lively lucky magenta mellow mighty misty nimble noble
olive orange patient placid proud quick quiet rapid rustic sapphire scarlet shiny silent
silver smart snowy solar spry steady stellar swift tactful teal tidy tranquil true vivid
warm wise witty zealous""".split()
ANIMALS = """albatross alpaca badger beaver bison bobcat buffalo camel caracal cheetah cobra
condor cougar coyote crane dingo dolphin eagle egret falcon ferret finch fox gazelle gecko
gibbon heron hyena ibis iguana jackal jaguar kestrel koala lemur leopard lion llama lynx
macaw marmot marten mink moose narwhal ocelot octopus orca osprey otter owl panda panther
pelican penguin puffin python quail raven robin salamander seal shark sloth stork swan
tapir tiger toucan turtle viper walrus weasel wolf wombat yak zebra""".split()


def readable_name() -> str:
    return f"{random.choice(ADJECTIVES)}-{random.choice(ANIMALS)}"
