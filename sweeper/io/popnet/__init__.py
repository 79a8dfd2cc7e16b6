"""bmtk PopNet (DiPDE) simulation directories -> sweeper Network, and bmtk's rates file.

Follows docs/formats.md (b)-(e): config.json with manifest variables and network/simulation
children (:mod:`.manifest`, :mod:`.config`); SONATA nodes/edges grouped into populations the
way PopNet does it (:mod:`.grouping`: ``group_by`` property, first node's dynamics_params,
first edge row per population pair, keys global across internal node files, external keys
per node population); population models (:mod:`.dynamics`); csv ``pop_rates`` and
``spikes`` inputs (:mod:`.inputs`); NetworkBuilders (:mod:`.builders`); output
``<key> <t> <rate>`` lines (:mod:`.output`). Reading never runs the engine: running a
config and writing its rates file is :func:`sweeper.api.run_popnet`.

Population names in the Network: an internal population is named by its first node's
``pop_name`` when no other population would get the same name, else by ``str(key)``
(then ``<node population>_<key>``); an external one is ``<node population>_<pop_name>``,
else ``<node population>_<key>``. :attr:`PopNetConfig.population_keys` maps each
recorded name to the key that bmtk prints in the rates file.
"""

from .builders import network_from_builder_result, network_from_builders, normalize_rates, simulation_of
from .config import PopNetConfig, read_popnet_config
from .dynamics import DIPDE_KEYS, internal_population
from .grouping import popnet_network
from .inputs import read_pop_rates
from .manifest import load_config
from .output import write_rates_file

__all__ = ["DIPDE_KEYS", "PopNetConfig", "internal_population", "load_config", "network_from_builder_result",
           "network_from_builders", "normalize_rates",
           "popnet_network", "read_pop_rates", "read_popnet_config", "simulation_of", "write_rates_file"]
